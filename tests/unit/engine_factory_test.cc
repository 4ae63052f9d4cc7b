// LoadEngine's choice of max_model_len: the model's context when the KV pool
// holds it, the pool's largest block multiple when it does not, explicit
// values honoured or refused with both numbers; and a config.json whose
// sizes would overflow is refused, not a crash.
#include "engine/engine_factory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "nlohmann/json.hpp"
#include "tests/unit/test_model.h"

namespace hydra::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPool[] = "the KV budget of 1234 bytes";

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

TEST(ResolveMaxModelLenTest, DefaultIsTheModelsContextWhenThePoolHoldsIt) {
  EXPECT_EQ(ResolveMaxModelLen(0, 256, 16, 16, kPool).value(), 256);
  EXPECT_EQ(ResolveMaxModelLen(0, 256, 1000, 16, kPool).value(), 256);
  // Not a block multiple: the model's context, not rounded.
  EXPECT_EQ(ResolveMaxModelLen(0, 300, 19, 16, kPool).value(), 300);
}

TEST(ResolveMaxModelLenTest, DefaultIsThePoolsLargestBlockMultipleOtherwise) {
  EXPECT_EQ(ResolveMaxModelLen(0, 256, 15, 16, kPool).value(), 240);
  EXPECT_EQ(ResolveMaxModelLen(0, 32768, 512, 16, kPool).value(), 8192);
  EXPECT_EQ(ResolveMaxModelLen(0, 300, 18, 16, kPool).value(), 288);
  // 2^30 blocks of 16 tokens overflow int; the cap is still the model's.
  EXPECT_EQ(
      ResolveMaxModelLen(0, model::kMaxPositionEmbeddings, 1 << 30, 16, kPool)
          .value(),
      model::kMaxPositionEmbeddings);
  // A pool of one token serves nothing.
  const absl::Status tiny = ResolveMaxModelLen(0, 256, 1, 1, kPool).status();
  EXPECT_EQ(tiny.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(tiny), HasSubstr(kPool));
}

TEST(ResolveMaxModelLenTest, ExplicitValueThatFitsIsHonoured) {
  EXPECT_EQ(ResolveMaxModelLen(100, 256, 7, 16, kPool).value(), 100);
  EXPECT_EQ(ResolveMaxModelLen(256, 256, 16, 16, kPool).value(), 256);
  EXPECT_EQ(ResolveMaxModelLen(2, 256, 1, 16, kPool).value(), 2);
}

TEST(ResolveMaxModelLenTest, ExplicitValueBeyondTheModelIsRefused) {
  const absl::Status s =
      ResolveMaxModelLen(40000, 32768, 1 << 20, 16, kPool).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s),
              AllOf(HasSubstr("--max_model_len"), HasSubstr("40000"),
                    HasSubstr("max_position_embeddings of 32768")));
}

TEST(ResolveMaxModelLenTest, ExplicitValueBeyondThePoolIsRefused) {
  const absl::Status s =
      ResolveMaxModelLen(16384, 32768, 512, 16, kPool).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s),
              AllOf(HasSubstr("--max_model_len"), HasSubstr("16384 tokens"),
                    HasSubstr("needs 1024 KV blocks"), HasSubstr(kPool),
                    HasSubstr("holds 512 (8192 tokens)")));
  // One token past the pool is one block too many.
  EXPECT_FALSE(ResolveMaxModelLen(241, 256, 15, 16, kPool).ok());
}

TEST(ResolveMaxModelLenTest, ExplicitValueBelowTwoIsRefused) {
  for (int bad : {-1, -100, 1}) {
    SCOPED_TRACE(bad);
    const absl::Status s = ResolveMaxModelLen(bad, 256, 16, 16, kPool).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(s), AllOf(HasSubstr("--max_model_len"),
                                  HasSubstr(absl::StrCat("got ", bad))));
  }
}

// stories15M: max_position_embeddings 256.
class LoadEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { HYDRA_REQUIRE_MODEL(); }

  static EngineOptions Options() {
    EngineOptions options;
    options.model_dir = testing::ModelDir().string();
    return options;
  }
};

TEST_F(LoadEngineTest, DefaultIsTheModelsContextWhenItFits) {
  EngineOptions options = Options();
  auto engine = LoadEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->config().max_model_len, 256);
  EXPECT_GT((*engine)->config().num_blocks, 16);
  EXPECT_THAT(ShortenedContextNote(options, **engine, "--kv_cache_bytes"),
              IsEmpty());
}

TEST_F(LoadEngineTest, DefaultShrinksToTheKvBudgetAndSaysSo) {
  EngineOptions options = Options();
  options.kv_cache_bytes = size_t{1} << 20;  // a few blocks of stories15M
  auto engine = LoadEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const EngineConfig& c = (*engine)->config();
  ASSERT_LT(c.num_blocks, 16);  // less than the model's 256 tokens
  EXPECT_EQ(c.max_model_len, c.num_blocks * c.block_size);
  EXPECT_EQ(
      ShortenedContextNote(options, **engine, "--kv_cache_bytes"),
      absl::StrCat("max_model_len ", c.max_model_len,
                   " (the KV budget of 1048576 bytes holds ", c.max_model_len,
                   " tokens; the model's context is 256; raise "
                   "--kv_cache_bytes or set --max_model_len)"));
  // An explicit value is never "shortened".
  options.max_model_len = c.max_model_len;
  EXPECT_THAT(ShortenedContextNote(options, **engine, "--kv_cache_bytes"),
              IsEmpty());
}

TEST_F(LoadEngineTest, ExplicitValueAboveTheModelsContextIsRefused) {
  EngineOptions options = Options();
  options.max_model_len = 300;
  auto engine = LoadEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      Message(engine.status()),
      AllOf(HasSubstr("--max_model_len"), HasSubstr("300"), HasSubstr("256")));
}

TEST_F(LoadEngineTest, ExplicitValueBeyondTheKvBudgetIsRefused) {
  EngineOptions options = Options();
  options.kv_cache_bytes = size_t{1} << 20;
  options.max_model_len = 256;
  auto engine = LoadEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(engine.status()),
              AllOf(HasSubstr("--max_model_len"), HasSubstr("256 tokens"),
                    HasSubstr("the KV budget of 1048576 bytes holds")));
}

TEST_F(LoadEngineTest, NonPositiveExplicitValueIsRefused) {
  EngineOptions options = Options();
  options.max_model_len = -1;
  auto engine = LoadEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(engine.status()), HasSubstr("--max_model_len"));
}

// Waits for one request's outputs.
struct Outcome {
  absl::Mutex mu;
  std::vector<int> tokens;
  EngineOutput last;
  bool done = false;
  OutputCallback Callback() {
    return [this](EngineOutput out) {
      absl::MutexLock lock(&mu);
      tokens.insert(tokens.end(), out.token_ids.begin(), out.token_ids.end());
      if (out.finished) {
        last = std::move(out);
        done = true;
      }
    };
  }
  bool Wait() {
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(60));
  }
};

TEST_F(LoadEngineTest, ExplicitSmallerValueCapsPromptAndGeneration) {
  constexpr int kCap = 40;
  EngineOptions options = Options();
  options.max_model_len = kCap;
  auto engine = LoadEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->config().max_model_len, kCap);

  // A prompt that leaves no room is refused, naming its length and the cap.
  EngineRequest too_long;
  too_long.prompt_ids.assign(kCap, 5);
  too_long.stopping.max_tokens = 1;
  Outcome unused;
  const absl::Status refused =
      (*engine)->Submit(std::move(too_long), unused.Callback()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(refused),
              AllOf(HasSubstr("prompt: 40 tokens"), HasSubstr("context of 40"),
                    HasSubstr("max_model_len")));

  // Generation stops at the cap: prompt + output = kCap, reason LENGTH, and
  // the tokens are the model's own (the cap changes nothing before it).
  const testing::GoldenCase golden = testing::LoadGolden()[0];
  const int prompt_len = static_cast<int>(golden.prompt_ids.size());
  ASSERT_LT(prompt_len, kCap);
  EngineRequest request;
  request.prompt_ids = golden.prompt_ids;
  request.sampling.temperature = 0;
  request.stopping.max_tokens = 1000;
  request.stopping.ignore_eos = true;
  Outcome outcome;
  ASSERT_TRUE((*engine)->Submit(std::move(request), outcome.Callback()).ok());
  ASSERT_TRUE(outcome.Wait());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.last.finish_reason, FinishReason::kLength);
  EXPECT_EQ(outcome.last.usage.prompt_tokens, prompt_len);
  EXPECT_EQ(outcome.last.usage.completion_tokens, kCap - prompt_len);
  ASSERT_EQ(static_cast<int>(outcome.tokens.size()), kCap - prompt_len);
  const size_t shared =
      std::min(outcome.tokens.size(), golden.output_ids.size());
  EXPECT_EQ(
      std::vector<int>(outcome.tokens.begin(), outcome.tokens.begin() + shared),
      std::vector<int>(golden.output_ids.begin(),
                       golden.output_ids.begin() + shared));
}

// Before model/config.cc capped it, max_position_embeddings = 2147483633
// overflowed the block count (tokens + block_size - 1 in int) and the
// runner's RoPE table aborted the process with std::bad_alloc.
TEST_F(LoadEngineTest, HugeMaxPositionEmbeddingsIsInvalidArgumentNotACrash) {
  const fs::path dir = fs::path(::testing::TempDir()) / "huge_context_model";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ifstream in(testing::ModelDir() / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["max_position_embeddings"] = 2147483633;
  std::ofstream(dir / "config.json") << config.dump();
  for (const char* name :
       {"model.safetensors", "tokenizer.model", "generation_config.json"}) {
    if (fs::exists(testing::ModelDir() / name)) {
      fs::create_symlink(testing::ModelDir() / name, dir / name);
    }
  }
  for (const int max_model_len : {0, 256}) {
    SCOPED_TRACE(max_model_len);
    EngineOptions options = Options();
    options.model_dir = dir.string();
    options.max_model_len = max_model_len;
    auto engine = LoadEngine(options);
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(engine.status()),
                AllOf(HasSubstr("\"max_position_embeddings\""),
                      HasSubstr("2147483633")));
  }
  fs::remove_all(dir);
}

// Hardening (issue 15, item 9): a Llama 3 tokenizer.json beside a model of
// 32,000 words is refused at load, naming both sizes.
TEST_F(LoadEngineTest, TokenizerLargerThanTheModelsVocabularyIsRefused) {
  const fs::path llama3 =
      testing::ModelDir().parent_path() / "tokenizers/llama3/tokenizer.json";
  if (!fs::exists(llama3)) GTEST_SKIP() << "no " << llama3 << " (setup.sh)";
  const fs::path dir = fs::temp_directory_path() / "hydra_foreign_tokenizer";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::create_symlink(testing::ModelDir() / name, dir / name);
  }
  fs::copy_file(llama3, dir / "tokenizer.json");
  EngineOptions options = Options();
  options.model_dir = dir.string();
  auto engine = LoadEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(engine.status()),
              AllOf(HasSubstr("tokenizer"), HasSubstr("128256"),
                    HasSubstr("vocab_size"), HasSubstr("32000")));
  fs::remove_all(dir);
}

// Hardening (issue 15, item 12): a config.json with fewer layers than the
// checkpoint would serve a truncated model; it is refused, naming a tensor
// of the first unused layer.
TEST_F(LoadEngineTest, CheckpointLayersBeyondTheConfigAreRefused) {
  const fs::path dir = fs::temp_directory_path() / "hydra_fewer_layers";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ifstream in(testing::ModelDir() / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  const int layers = config["num_hidden_layers"];
  config["num_hidden_layers"] = layers - 1;
  std::ofstream(dir / "config.json") << config.dump();
  for (const char* name : {"model.safetensors", "tokenizer.model"}) {
    fs::create_symlink(testing::ModelDir() / name, dir / name);
  }
  EngineOptions options = Options();
  options.model_dir = dir.string();
  auto engine = LoadEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(engine.status()),
              AllOf(HasSubstr(absl::StrCat("model.layers.", layers - 1, ".")),
                    HasSubstr("num_hidden_layers")));
  fs::remove_all(dir);
}

TEST_F(LoadEngineTest, BadSchedulingOptionsAreRefusedByName) {
  EngineOptions options = Options();
  options.scheduling.max_step_ms = -5;
  EXPECT_THAT(Message(LoadEngine(options).status()),
              AllOf(HasSubstr("max_step_ms"), HasSubstr("-5")));
  options = Options();
  options.scheduling.max_partial_prefills = 0;
  EXPECT_THAT(
      Message(LoadEngine(options).status()),
      AllOf(HasSubstr("max_partial_prefills"), HasSubstr("at least 1")));
}

}  // namespace
}  // namespace hydra::engine
