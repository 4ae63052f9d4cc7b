#include "model/config.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hydra::model {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSource[] = "models/test/config.json";

fs::path TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) / "config_test" /
                 (std::string(info->test_suite_name()) + "." + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& needles) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& needle : needles) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(needle));
  }
}

// stories15M as the llama2.c converter describes it.
nlohmann::json Stories15M() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 288},
          {"intermediate_size", 768},
          {"num_hidden_layers", 6},
          {"num_attention_heads", 6},
          {"num_key_value_heads", 6},
          {"vocab_size", 32000},
          {"max_position_embeddings", 256},
          {"rms_norm_eps", 1e-5},
          {"tie_word_embeddings", true},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", "float32"}};
}

absl::StatusOr<ModelConfig> Parse(const nlohmann::json& json) {
  return ParseModelConfig(json.dump(), kSource);
}

TEST(ModelConfigTest, ParsesStories15M) {
  auto config = Parse(Stories15M());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, "LlamaForCausalLM");
  EXPECT_EQ(config->model_type, "llama");
  EXPECT_EQ(config->hidden_size, 288);
  EXPECT_EQ(config->intermediate_size, 768);
  EXPECT_EQ(config->num_layers, 6);
  EXPECT_EQ(config->num_heads, 6);
  EXPECT_EQ(config->num_kv_heads, 6);
  EXPECT_EQ(config->head_dim, 48);
  EXPECT_EQ(config->vocab_size, 32000);
  EXPECT_EQ(config->max_position_embeddings, 256);
  EXPECT_FLOAT_EQ(config->rms_norm_eps, 1e-5f);
  EXPECT_EQ(config->rope_theta, 10000.0f);
  EXPECT_TRUE(config->tie_word_embeddings);
  EXPECT_FALSE(config->attention_bias);
  EXPECT_EQ(config->bos_token_id, 1);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(config->torch_dtype, "float32");
  EXPECT_EQ(config->sliding_window, 0);
}

TEST(ModelConfigTest, KvHeadsDefaultToHeads) {
  nlohmann::json json = Stories15M();
  json.erase("num_key_value_heads");
  json.erase("tie_word_embeddings");
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_kv_heads, 6);
  EXPECT_FALSE(config->tie_word_embeddings);
}

TEST(ModelConfigTest, ParsesMistralWithGroupedQueryAttention) {
  const nlohmann::json json = {{"architectures", {"MistralForCausalLM"}},
                               {"model_type", "mistral"},
                               {"hidden_size", 4096},
                               {"intermediate_size", 14336},
                               {"num_hidden_layers", 32},
                               {"num_attention_heads", 32},
                               {"num_key_value_heads", 8},
                               {"vocab_size", 32000},
                               {"max_position_embeddings", 32768},
                               {"rms_norm_eps", 1e-5},
                               {"rope_theta", 10000.0},
                               {"sliding_window", 4096},
                               {"hidden_act", "silu"},
                               {"tie_word_embeddings", false},
                               {"bos_token_id", 1},
                               {"eos_token_id", 2},
                               {"torch_dtype", "bfloat16"}};
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model_type, "mistral");
  EXPECT_EQ(config->num_heads, 32);
  EXPECT_EQ(config->num_kv_heads, 8);
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_FALSE(config->attention_bias);
  EXPECT_EQ(config->sliding_window, 4096);
  EXPECT_EQ(config->torch_dtype, "bfloat16");
}

TEST(ModelConfigTest, ParsesQwen2) {
  // Qwen2-0.5B: no attention_bias field, yet its q/k/v carry biases; the
  // sliding window is declared but switched off.
  const nlohmann::json json = {{"architectures", {"Qwen2ForCausalLM"}},
                               {"model_type", "qwen2"},
                               {"hidden_size", 896},
                               {"intermediate_size", 4864},
                               {"num_hidden_layers", 24},
                               {"num_attention_heads", 14},
                               {"num_key_value_heads", 2},
                               {"vocab_size", 151936},
                               {"max_position_embeddings", 32768},
                               {"rms_norm_eps", 1e-6},
                               {"rope_theta", 1000000.0},
                               {"use_sliding_window", false},
                               {"sliding_window", 32768},
                               {"tie_word_embeddings", true},
                               {"bos_token_id", 151643},
                               {"eos_token_id", 151643},
                               {"rope_scaling", nullptr},
                               {"torch_dtype", "bfloat16"}};
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(config->attention_bias);
  EXPECT_EQ(config->rope_theta, 1e6f);
  EXPECT_TRUE(config->tie_word_embeddings);
  EXPECT_EQ(config->head_dim, 64);
  EXPECT_EQ(config->num_kv_heads, 2);
  EXPECT_FLOAT_EQ(config->rms_norm_eps, 1e-6f);
  EXPECT_EQ(config->sliding_window, 0);
}

TEST(ModelConfigTest, ExplicitHeadDimWins) {
  nlohmann::json json = Stories15M();
  json["head_dim"] = 64;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->head_dim, 64);
}

TEST(ModelConfigTest, EosAsList) {
  nlohmann::json json = Stories15M();
  json["eos_token_id"] = {2, 31999, 7};
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2, 31999, 7));
}

TEST(ModelConfigTest, RoundTripsThroughJson) {
  nlohmann::json json = Stories15M();
  json["eos_token_id"] = {2, 3};
  json["rope_theta"] = 500000.0;
  json["num_key_value_heads"] = 2;
  json["sliding_window"] = 128;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string text = ModelConfigToJson(*config);
  EXPECT_THAT(text, HasSubstr("\"num_hidden_layers\": 6"));
  EXPECT_THAT(text, HasSubstr("\"rms_norm_eps\": 1e-05"));
  auto again = ParseModelConfig(text, kSource);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << text;
  EXPECT_EQ(ModelConfigToJson(*again), text);
  EXPECT_EQ(again->rms_norm_eps, config->rms_norm_eps);
  EXPECT_EQ(again->rope_theta, config->rope_theta);
  EXPECT_EQ(again->num_kv_heads, 2);
  EXPECT_EQ(again->sliding_window, 128);
  EXPECT_EQ(again->eos_token_ids, config->eos_token_ids);
  EXPECT_EQ(again->bos_token_id, 1);
}

TEST(ModelConfigTest, LoadsFolderWithGenerationConfigOverride) {
  const fs::path dir = TestDir();
  auto base = Parse(Stories15M());
  ASSERT_TRUE(base.ok()) << base.status();
  WriteText(dir / "config.json", ModelConfigToJson(*base));
  WriteText(
      dir / "generation_config.json",
      R"({"bos_token_id": 5, "eos_token_id": [2, 9], "temperature": 0.7})");
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->bos_token_id, 5);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2, 9));
  EXPECT_EQ(config->hidden_size, 288);

  // What GenerationConfigToJson writes reads back the same way.
  ModelConfig changed = *config;
  changed.bos_token_id = 3;
  changed.eos_token_ids = {4};
  WriteText(dir / "generation_config.json", GenerationConfigToJson(changed));
  auto reloaded = LoadModelConfig(dir);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->bos_token_id, 3);
  EXPECT_THAT(reloaded->eos_token_ids, ElementsAre(4));
}

TEST(ModelConfigTest, LoadsFolderWithoutGenerationConfig) {
  const fs::path dir = TestDir();
  WriteText(dir / "config.json", Stories15M().dump());
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2));
}

TEST(ModelConfigTest, MissingConfigIsNotFound) {
  const fs::path dir = TestDir();
  ExpectError(LoadModelConfig(dir).status(), absl::StatusCode::kNotFound,
              {(dir / "config.json").string()});
}

TEST(ModelConfigTest, BadGenerationConfigNamesThatFile) {
  const fs::path dir = TestDir();
  WriteText(dir / "config.json", Stories15M().dump());
  WriteText(dir / "generation_config.json", R"({"eos_token_id": "2"})");
  ExpectError(LoadModelConfig(dir).status(), absl::StatusCode::kInvalidArgument,
              {(dir / "generation_config.json").string(), "eos_token_id"});
}

TEST(ModelConfigTest, RefusesHeadsNotDivisibleByKvHeads) {
  nlohmann::json json = Stories15M();
  json["num_key_value_heads"] = 4;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "num_key_value_heads", "num_attention_heads"});
}

TEST(ModelConfigTest, RefusesHiddenNotDivisibleByHeads) {
  nlohmann::json json = Stories15M();
  json["num_attention_heads"] = 5;
  json["num_key_value_heads"] = 5;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "hidden_size", "head_dim"});
}

TEST(ModelConfigTest, RefusesMissingHiddenSize) {
  nlohmann::json json = Stories15M();
  json.erase("hidden_size");
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"hidden_size\"", "required"});
}

TEST(ModelConfigTest, RefusesStringWhereIntExpected) {
  nlohmann::json json = Stories15M();
  json["num_hidden_layers"] = "6";
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"num_hidden_layers\"", "integer", "string"});
}

TEST(ModelConfigTest, RefusesFractionWhereIntExpected) {
  nlohmann::json json = Stories15M();
  json["vocab_size"] = 32000.5;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"vocab_size\"", "integer"});
}

TEST(ModelConfigTest, RefusesNonPositiveSize) {
  nlohmann::json json = Stories15M();
  json["num_hidden_layers"] = 0;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"num_hidden_layers\"", "> 0"});
  json = Stories15M();
  json["intermediate_size"] = -768;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"intermediate_size\""});
}

// Found by tests/fuzz/config_fuzzer: rms_norm_eps and rope_theta were
// checked as doubles and then narrowed to float, so 1e300 became inf and
// 1e-300 became 0, both accepted.
TEST(ModelConfigTest, RefusesNumbersOutsideFloatRange) {
  for (const char* field : {"rms_norm_eps", "rope_theta"}) {
    for (double value : {1e300, 1e-300, -1.0, 0.0}) {
      nlohmann::json json = Stories15M();
      json[field] = value;
      ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
                  {kSource, field, "positive number"});
    }
  }
  nlohmann::json json = Stories15M();
  json["rms_norm_eps"] = 1e-30;  // small, but a float holds it
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FLOAT_EQ(config->rms_norm_eps, 1e-30f);
}

// Sizes near INT_MAX used to pass, and max_position_embeddings = 2147483633
// then overflowed the engine's block count and aborted with std::bad_alloc.
TEST(ModelConfigTest, RefusesSizesAboveTheirMaximum) {
  struct Case {
    const char* field;
    int max;
  };
  const Case cases[] = {
      {"max_position_embeddings", kMaxPositionEmbeddings},
      {"hidden_size", kMaxHiddenSize},
      {"intermediate_size", kMaxIntermediateSize},
      {"num_hidden_layers", kMaxLayers},
      {"num_attention_heads", kMaxHeads},
      {"num_key_value_heads", kMaxHeads},
      {"head_dim", kMaxHeadDim},
      {"vocab_size", kMaxVocabSize},
      {"sliding_window", kMaxPositionEmbeddings},
  };
  for (const Case& c : cases) {
    for (const int64_t value : {int64_t{c.max} + 1, int64_t{2147483633}}) {
      SCOPED_TRACE(testing::Message() << c.field << " = " << value);
      nlohmann::json json = Stories15M();
      json[c.field] = value;
      ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
                  {kSource, absl::StrCat("\"", c.field, "\""),
                   absl::StrCat("[1, ", c.max, "]"), absl::StrCat(value)});
    }
  }
  nlohmann::json json = Stories15M();
  json["rope_scaling"] = {{"rope_type", "llama3"},
                          {"factor", 32.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 2147483633}};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"rope_scaling.original_max_position_embeddings\"",
               absl::StrCat("[1, ", kMaxPositionEmbeddings, "]")});
  // The maximum itself is accepted.
  json = Stories15M();
  json["max_position_embeddings"] = kMaxPositionEmbeddings;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_position_embeddings, kMaxPositionEmbeddings);
}

// Llama-3.2-1B's rope_scaling.
nlohmann::json Llama3Scaling() {
  return {{"factor", 32.0},
          {"high_freq_factor", 4.0},
          {"low_freq_factor", 1.0},
          {"original_max_position_embeddings", 8192},
          {"rope_type", "llama3"}};
}

TEST(ModelConfigTest, ParsesLlama3RopeScaling) {
  nlohmann::json json = Stories15M();
  json["rope_theta"] = 500000.0;
  json["rope_scaling"] = Llama3Scaling();
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  const RopeScaling& s = config->rope_scaling;
  EXPECT_EQ(s.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(s.factor, 32.0);
  EXPECT_EQ(s.low_freq_factor, 1.0);
  EXPECT_EQ(s.high_freq_factor, 4.0);
  EXPECT_EQ(s.original_max_position_embeddings, 8192);

  // Configs written before transformers 4.43 spell the key "type".
  json["rope_scaling"].erase("rope_type");
  json["rope_scaling"]["type"] = "llama3";
  config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(config->rope_scaling.factor, 32.0);
}

TEST(ModelConfigTest, ParsesLinearRopeScaling) {
  nlohmann::json json = Stories15M();
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(config->rope_scaling.factor, 2.0);

  json["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 4}};
  config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(config->rope_scaling.factor, 4.0);
}

TEST(ModelConfigTest, DefaultOrNullRopeScalingIsPlainRope) {
  nlohmann::json json = Stories15M();
  for (const nlohmann::json& scaling :
       {nlohmann::json(nullptr), nlohmann::json{{"rope_type", "default"}},
        nlohmann::json{{"type", "default"}, {"factor", 8.0}}}) {
    SCOPED_TRACE(scaling.dump());
    json["rope_scaling"] = scaling;
    auto config = Parse(json);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->rope_scaling.type, RopeScaling::Type::kDefault);
    EXPECT_EQ(config->rope_scaling.factor, 1.0);
  }
  json.erase("rope_scaling");
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeScaling::Type::kDefault);
}

TEST(ModelConfigTest, RefusesUnsupportedRopeScalingType) {
  for (const char* type : {"dynamic", "yarn", "longrope", "su"}) {
    SCOPED_TRACE(type);
    nlohmann::json json = Stories15M();
    json["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
                {kSource, "\"rope_scaling.rope_type\"", type, "not supported",
                 "\"default\"", "\"linear\"", "\"llama3\""});
    // The older key is named as the file spells it.
    json["rope_scaling"] = {{"type", type}, {"factor", 2.0}};
    ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
                {kSource, "\"rope_scaling.type\"", type, "\"llama3\""});
  }
  nlohmann::json json = Stories15M();
  json["rope_scaling"] = {{"factor", 2.0}};
  ExpectError(
      Parse(json).status(), absl::StatusCode::kInvalidArgument,
      {kSource, "\"rope_scaling.rope_type\"", "required", "\"llama3\""});
  json["rope_scaling"] = {{"rope_type", 3}};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"rope_scaling.rope_type\"", "string"});
  json["rope_scaling"] = "llama3";
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"rope_scaling\"", "object"});
}

TEST(ModelConfigTest, RefusesBadRopeScalingNumbers) {
  struct Case {
    const char* field;
    nlohmann::json value;  // null: the field is removed
    std::vector<std::string> needles;
  };
  const Case cases[] = {
      {"factor", 0.0, {"\"rope_scaling.factor\"", "positive"}},
      {"factor", -2.0, {"\"rope_scaling.factor\"", "positive"}},
      {"factor", "32", {"\"rope_scaling.factor\"", "number", "string"}},
      {"factor", nullptr, {"\"rope_scaling.factor\"", "required"}},
      {"low_freq_factor",
       0.0,
       {"\"rope_scaling.low_freq_factor\"", "positive"}},
      {"low_freq_factor",
       4.0,
       {"\"rope_scaling.low_freq_factor\"", "\"rope_scaling.high_freq_factor\"",
        "less than"}},
      {"high_freq_factor",
       0.5,
       {"\"rope_scaling.low_freq_factor\"", "\"rope_scaling.high_freq_factor\"",
        "less than"}},
      {"high_freq_factor",
       nullptr,
       {"\"rope_scaling.high_freq_factor\"", "required"}},
      {"original_max_position_embeddings",
       0,
       {"\"rope_scaling.original_max_position_embeddings\"", "> 0"}},
      {"original_max_position_embeddings",
       8192.5,
       {"\"rope_scaling.original_max_position_embeddings\"", "integer"}},
      {"original_max_position_embeddings",
       nullptr,
       {"\"rope_scaling.original_max_position_embeddings\"", "required"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.field << " = " << c.value.dump());
    nlohmann::json json = Stories15M();
    json["rope_scaling"] = Llama3Scaling();
    if (c.value.is_null()) {
      json["rope_scaling"].erase(c.field);
    } else {
      json["rope_scaling"][c.field] = c.value;
    }
    std::vector<std::string> needles = c.needles;
    needles.push_back(kSource);
    ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
                needles);
  }
  nlohmann::json json = Stories15M();
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 0}};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"rope_scaling.factor\"", "positive"});
  json["rope_scaling"] = {{"type", "linear"}};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"rope_scaling.factor\"", "required"});
}

TEST(ModelConfigTest, RopeScalingRoundTripsThroughJson) {
  for (const nlohmann::json& scaling :
       {Llama3Scaling(), nlohmann::json{{"type", "linear"}, {"factor", 2.5}}}) {
    SCOPED_TRACE(scaling.dump());
    nlohmann::json json = Stories15M();
    json["rope_scaling"] = scaling;
    auto config = Parse(json);
    ASSERT_TRUE(config.ok()) << config.status();
    const std::string text = ModelConfigToJson(*config);
    EXPECT_THAT(text, HasSubstr("\"rope_scaling\""));
    auto again = ParseModelConfig(text, kSource);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << text;
    EXPECT_EQ(ModelConfigToJson(*again), text);
    const RopeScaling &a = again->rope_scaling, &b = config->rope_scaling;
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.factor, b.factor);
    EXPECT_EQ(a.low_freq_factor, b.low_freq_factor);
    EXPECT_EQ(a.high_freq_factor, b.high_freq_factor);
    EXPECT_EQ(a.original_max_position_embeddings,
              b.original_max_position_embeddings);
  }
  // Plain RoPE writes no rope_scaling, as before.
  auto plain = Parse(Stories15M());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(ModelConfigToJson(*plain),
              ::testing::Not(HasSubstr("rope_scaling")));
}

TEST(ModelConfigTest, RefusesUnknownArchitecture) {
  nlohmann::json json = Stories15M();
  json["architectures"] = {"GPT2LMHeadModel"};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"architectures\"", "GPT2LMHeadModel",
               "LlamaForCausalLM", "Qwen2ForCausalLM"});
  json = Stories15M();
  json["model_type"] = "gpt2";
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"model_type\"", "gpt2"});
}

TEST(ModelConfigTest, RefusesEosOutsideVocabulary) {
  nlohmann::json json = Stories15M();
  json["eos_token_id"] = {2, 32000};
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"eos_token_id\"", "32000"});
}

// Issue 15 item 12: -1 is not "no BOS"; null or no field is.
TEST(ModelConfigTest, RefusesNegativeBosButAcceptsNull) {
  nlohmann::json json = Stories15M();
  json["bos_token_id"] = -1;
  ExpectError(Parse(json).status(), absl::StatusCode::kInvalidArgument,
              {kSource, "\"bos_token_id\"", "-1", "null"});
  json["bos_token_id"] = nullptr;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->bos_token_id, -1);
}

TEST(ModelConfigTest, RefusesInvalidJson) {
  ExpectError(ParseModelConfig("{\"hidden_size\": ", kSource).status(),
              absl::StatusCode::kInvalidArgument, {kSource, "JSON"});
  ExpectError(ParseModelConfig("[1, 2]", kSource).status(),
              absl::StatusCode::kInvalidArgument, {kSource, "object"});
}

}  // namespace
}  // namespace hydra::model
