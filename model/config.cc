#include "model/config.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace hydra::model {
namespace {

using Json = nlohmann::json;

struct Family {
  const char* architecture;
  const char* model_type;
};
constexpr Family kFamilies[] = {
    {"LlamaForCausalLM", "llama"},
    {"MistralForCausalLM", "mistral"},
    {"Qwen2ForCausalLM", "qwen2"},
};

std::string SupportedFamilies() {
  std::vector<std::string> names;
  for (const Family& f : kFamilies) {
    names.push_back(absl::StrCat(f.architecture, " (", f.model_type, ")"));
  }
  return absl::StrJoin(names, ", ");
}

// Reads typed fields out of one JSON object, turning every absence or type
// mismatch into an InvalidArgument that names the file and the field. A JSON
// null counts as absent: HF writes null for "not set". A nested object's
// fields are named with `prefix`, e.g. "rope_scaling.".
class Fields {
 public:
  Fields(const Json& object, std::string_view source,
         std::string_view prefix = "")
      : object_(object), source_(source), prefix_(prefix) {}

  absl::Status Error(const char* field, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": field \"", prefix_, field, "\" ", what));
  }

  const std::string& source() const { return source_; }

  bool Has(const char* field) const {
    auto it = object_.find(field);
    return it != object_.end() && !it->is_null();
  }

  absl::StatusOr<int> Int(const char* field) const {
    if (!Has(field)) return Error(field, "is required (an integer)");
    return ToInt(field, object_.at(field));
  }
  absl::StatusOr<int> Int(const char* field, int fallback) const {
    return Has(field) ? Int(field) : fallback;
  }

  // A token id that may be absent (null or left out: `fallback`) but, when
  // given, is not negative: -1 for "none" would pass unnoticed otherwise.
  absl::StatusOr<int> OptionalTokenId(const char* field, int fallback) const {
    if (!Has(field)) return fallback;
    ASSIGN_OR_RETURN(int value, Int(field));
    if (value < 0) {
      return Error(field, absl::StrCat("is ", value,
                                       "; a model without one writes null or "
                                       "leaves the field out"));
    }
    return value;
  }

  absl::StatusOr<int> PositiveInt(const char* field) const {
    ASSIGN_OR_RETURN(int value, Int(field));
    if (value <= 0) {
      return Error(field, absl::StrCat("must be > 0, got ", value));
    }
    return value;
  }

  // A size: in [1, max]. The cap keeps sizes derived from it (token and
  // block counts, positions, per-token widths) inside int.
  absl::StatusOr<int> SizeInt(const char* field, int max) const {
    ASSIGN_OR_RETURN(int value, PositiveInt(field));
    if (value > max) {
      return Error(field, absl::StrCat("must be in [1, ", max, "], got ", value,
                                       " (the largest hydra accepts)"));
    }
    return value;
  }

  absl::StatusOr<double> Number(const char* field) const {
    if (!Has(field)) return Error(field, "is required (a number)");
    const Json& value = object_.at(field);
    if (!value.is_number()) {
      return Error(field,
                   absl::StrCat("must be a number, got ", value.type_name()));
    }
    return value.get<double>();
  }
  absl::StatusOr<double> Number(const char* field, double fallback) const {
    return Has(field) ? Number(field) : fallback;
  }

  // A required finite number > 0.
  absl::StatusOr<double> PositiveNumber(const char* field) const {
    ASSIGN_OR_RETURN(double value, Number(field));
    if (!(value > 0) || !std::isfinite(value)) {
      return Error(field,
                   absl::StrCat("must be a positive number, got ", value));
    }
    return value;
  }

  // A finite number > 0 as the float the kernels use, or `fallback` when
  // absent: checked after the conversion, since 1e300 would become inf and
  // 1e-300 zero (found by tests/fuzz/config_fuzzer).
  absl::StatusOr<float> PositiveFloat(const char* field, float fallback) const {
    ASSIGN_OR_RETURN(double value, Number(field, fallback));
    const float narrowed = static_cast<float>(value);
    if (!(narrowed > 0) || !std::isfinite(narrowed)) {
      return Error(field,
                   absl::StrCat("must be a positive number within float range, "
                                "got ",
                                value));
    }
    return narrowed;
  }

  absl::StatusOr<bool> Bool(const char* field, bool fallback) const {
    if (!Has(field)) return fallback;
    const Json& value = object_.at(field);
    if (!value.is_boolean()) {
      return Error(field, absl::StrCat("must be true or false, got ",
                                       value.type_name()));
    }
    return value.get<bool>();
  }

  absl::StatusOr<std::optional<std::string>> String(const char* field) const {
    if (!Has(field)) return std::nullopt;
    const Json& value = object_.at(field);
    if (!value.is_string()) {
      return Error(field,
                   absl::StrCat("must be a string, got ", value.type_name()));
    }
    return value.get<std::string>();
  }

  // eos_token_id is an int in older configs and a list in newer ones (Llama 3,
  // Qwen2 generation_config): generation stops at any of them.
  absl::StatusOr<std::optional<std::vector<int>>> IntOrIntList(
      const char* field) const {
    if (!Has(field)) return std::nullopt;
    const Json& value = object_.at(field);
    std::vector<int> ids;
    if (value.is_array()) {
      for (const Json& item : value) {
        ASSIGN_OR_RETURN(int id, ToInt(field, item));
        ids.push_back(id);
      }
    } else {
      ASSIGN_OR_RETURN(int id, ToInt(field, value));
      ids.push_back(id);
    }
    return ids;
  }

 private:
  absl::StatusOr<int> ToInt(const char* field, const Json& value) const {
    // Unsigned first: nlohmann stores every non-negative literal as unsigned,
    // and a huge one would wrap if read as signed.
    if (value.is_number_unsigned()) {
      uint64_t v = value.get<uint64_t>();
      if (v <= static_cast<uint64_t>(std::numeric_limits<int>::max())) {
        return static_cast<int>(v);
      }
    } else if (value.is_number_integer()) {
      int64_t v = value.get<int64_t>();
      if (v >= std::numeric_limits<int>::min()) return static_cast<int>(v);
    } else {
      return Error(field, absl::StrCat("must be an integer, got ",
                                       value.type_name(), " ", value.dump()));
    }
    return Error(field, absl::StrCat("is out of range: ", value.dump()));
  }

  const Json& object_;
  std::string source_;
  std::string prefix_;
};

absl::StatusOr<Json> ParseObject(std::string_view text,
                                 const std::string& source) {
  Json json = Json::parse(text.begin(), text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object at top level, got ",
                     json.type_name()));
  }
  return json;
}

// Fills architecture and model_type, accepting either or both of
// "architectures" and "model_type" as long as each names a supported family.
absl::Status ParseFamily(const Json& json, const Fields& fields,
                         ModelConfig& config) {
  const Family* by_arch = nullptr;
  const Family* by_type = nullptr;
  if (fields.Has("architectures")) {
    const Json& archs = json.at("architectures");
    if (!archs.is_array() || archs.size() != 1 || !archs[0].is_string()) {
      return fields.Error(
          "architectures",
          absl::StrCat("must be a list of one string, got ", archs.dump()));
    }
    std::string arch = archs[0].get<std::string>();
    for (const Family& f : kFamilies) {
      if (f.architecture == arch) by_arch = &f;
    }
    if (by_arch == nullptr) {
      return fields.Error(
          "architectures",
          absl::StrCat("names unsupported architecture \"", arch,
                       "\"; supported: ", SupportedFamilies()));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> type,
                   fields.String("model_type"));
  if (type.has_value()) {
    for (const Family& f : kFamilies) {
      if (f.model_type == *type) by_type = &f;
    }
    if (by_type == nullptr) {
      return fields.Error("model_type",
                          absl::StrCat("names unsupported model type \"", *type,
                                       "\"; supported: ", SupportedFamilies()));
    }
  }
  if (by_arch == nullptr && by_type == nullptr) {
    return fields.Error(
        "architectures",
        absl::StrCat("(or \"model_type\") is required; supported: ",
                     SupportedFamilies()));
  }
  // model_type decides family defaults: fine-tunes sometimes keep the
  // LlamaForCausalLM class name with another model_type, and the reverse.
  config.architecture = (by_arch ? by_arch : by_type)->architecture;
  config.model_type = (by_type ? by_type : by_arch)->model_type;
  return absl::OkStatus();
}

// The rope_scaling types RopeScaling implements, as Hugging Face names them.
constexpr const char* kRopeTypes = "\"default\", \"linear\", \"llama3\"";

// Reads "rope_scaling" (absent or null: plain RoPE). The type is under
// "rope_type", or "type" in configs written before transformers 4.43.
absl::Status ParseRopeScaling(const Json& json, const Fields& fields,
                              RopeScaling& scaling) {
  scaling = RopeScaling{};
  if (!fields.Has("rope_scaling")) return absl::OkStatus();
  const Json& object = json.at("rope_scaling");
  if (!object.is_object()) {
    return fields.Error(
        "rope_scaling",
        absl::StrCat("must be an object or null, got ", object.dump()));
  }
  const Fields rope(object, fields.source(), "rope_scaling.");
  const char* type_key = rope.Has("rope_type") ? "rope_type" : "type";
  ASSIGN_OR_RETURN(std::optional<std::string> type, rope.String(type_key));
  if (!type.has_value()) {
    return rope.Error("rope_type",
                      absl::StrCat("is required; supported: ", kRopeTypes));
  }
  if (*type == "default") return absl::OkStatus();
  if (*type == "linear") {
    scaling.type = RopeScaling::Type::kLinear;
    ASSIGN_OR_RETURN(scaling.factor, rope.PositiveNumber("factor"));
    return absl::OkStatus();
  }
  if (*type != "llama3") {
    return rope.Error(type_key,
                      absl::StrCat("is \"", *type, "\", which is not supported",
                                   "; supported: ", kRopeTypes));
  }
  scaling.type = RopeScaling::Type::kLlama3;
  ASSIGN_OR_RETURN(scaling.factor, rope.PositiveNumber("factor"));
  ASSIGN_OR_RETURN(scaling.low_freq_factor,
                   rope.PositiveNumber("low_freq_factor"));
  ASSIGN_OR_RETURN(scaling.high_freq_factor,
                   rope.PositiveNumber("high_freq_factor"));
  if (!(scaling.low_freq_factor < scaling.high_freq_factor)) {
    return rope.Error(
        "low_freq_factor",
        absl::StrCat("(", scaling.low_freq_factor,
                     ") must be less than \"rope_scaling.high_freq_factor\" (",
                     scaling.high_freq_factor, ")"));
  }
  ASSIGN_OR_RETURN(
      scaling.original_max_position_embeddings,
      rope.SizeInt("original_max_position_embeddings", kMaxPositionEmbeddings));
  return absl::OkStatus();
}

absl::Status ValidateTokenIds(const ModelConfig& config,
                              const std::string& source) {
  auto check = [&](const char* field, int id) -> absl::Status {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": field \"", field, "\" is ", id,
          ", outside the vocabulary [0, ", config.vocab_size, ")"));
    }
    return absl::OkStatus();
  };
  if (config.bos_token_id != -1)
    RETURN_IF_ERROR(check("bos_token_id", config.bos_token_id));
  for (int id : config.eos_token_ids)
    RETURN_IF_ERROR(check("eos_token_id", id));
  return absl::OkStatus();
}

// The shortest decimal that reads back as the same float, so that 1e-5f is
// written as 1e-05 rather than 9.99999974737875e-06.
double ShortestDouble(float value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

void AddTokenIds(const ModelConfig& config, nlohmann::ordered_json& json) {
  if (config.bos_token_id >= 0) {
    json["bos_token_id"] = config.bos_token_id;
  } else {
    json["bos_token_id"] = nullptr;
  }
  if (config.eos_token_ids.size() == 1) {
    json["eos_token_id"] = config.eos_token_ids[0];
  } else if (config.eos_token_ids.empty()) {
    json["eos_token_id"] = nullptr;
  } else {
    json["eos_token_id"] = config.eos_token_ids;
  }
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view source_view) {
  // Debian's abseil has its own string_view, which StrCat does not take.
  const std::string source(source_view);
  ASSIGN_OR_RETURN(Json json, ParseObject(json_text, source));
  Fields fields(json, source);
  ModelConfig config;
  RETURN_IF_ERROR(ParseFamily(json, fields, config));

  RETURN_IF_ERROR(ParseRopeScaling(json, fields, config.rope_scaling));
  ASSIGN_OR_RETURN(std::optional<std::string> act, fields.String("hidden_act"));
  if (act.has_value() && *act != "silu") {
    return fields.Error(
        "hidden_act",
        absl::StrCat("is \"", *act, "\"; only \"silu\" is supported"));
  }
  ASSIGN_OR_RETURN(bool mlp_bias, fields.Bool("mlp_bias", false));
  if (mlp_bias)
    return fields.Error("mlp_bias", "is true; MLP biases are not supported");

  ASSIGN_OR_RETURN(config.hidden_size,
                   fields.SizeInt("hidden_size", kMaxHiddenSize));
  ASSIGN_OR_RETURN(config.intermediate_size,
                   fields.SizeInt("intermediate_size", kMaxIntermediateSize));
  ASSIGN_OR_RETURN(config.num_layers,
                   fields.SizeInt("num_hidden_layers", kMaxLayers));
  ASSIGN_OR_RETURN(config.num_heads,
                   fields.SizeInt("num_attention_heads", kMaxHeads));
  ASSIGN_OR_RETURN(config.vocab_size,
                   fields.SizeInt("vocab_size", kMaxVocabSize));
  ASSIGN_OR_RETURN(
      config.max_position_embeddings,
      fields.SizeInt("max_position_embeddings", kMaxPositionEmbeddings));

  config.num_kv_heads = config.num_heads;
  if (fields.Has("num_key_value_heads")) {
    ASSIGN_OR_RETURN(config.num_kv_heads,
                     fields.SizeInt("num_key_value_heads", kMaxHeads));
  }
  if (config.num_heads % config.num_kv_heads != 0) {
    return fields.Error(
        "num_key_value_heads",
        absl::StrCat(
            "(", config.num_kv_heads, ") must divide \"num_attention_heads\" (",
            config.num_heads,
            ") so that each KV head serves a whole group of query heads"));
  }
  if (fields.Has("head_dim")) {
    ASSIGN_OR_RETURN(config.head_dim, fields.SizeInt("head_dim", kMaxHeadDim));
  } else if (config.hidden_size % config.num_heads != 0) {
    return fields.Error(
        "hidden_size",
        absl::StrCat("(", config.hidden_size,
                     ") must be divisible by \"num_attention_heads\" (",
                     config.num_heads, ") when \"head_dim\" is not given"));
  } else {
    config.head_dim = config.hidden_size / config.num_heads;
  }
  if (config.head_dim % 2 != 0) {
    return fields.Error("head_dim",
                        absl::StrCat("(", config.head_dim,
                                     ") must be even for rotary embeddings"));
  }

  ASSIGN_OR_RETURN(config.rms_norm_eps,
                   fields.PositiveFloat("rms_norm_eps", config.rms_norm_eps));
  ASSIGN_OR_RETURN(config.rope_theta,
                   fields.PositiveFloat("rope_theta", config.rope_theta));

  ASSIGN_OR_RETURN(config.tie_word_embeddings,
                   fields.Bool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(config.attention_bias, fields.Bool("attention_bias", false));
  // Hugging Face's Qwen2 builds q/k/v with bias unconditionally and ignores the
  // field, so we do too: the checkpoint always carries those tensors.
  if (config.model_type == "qwen2") config.attention_bias = true;

  // Recorded, not applied: attention stays full, which is exact while a
  // sequence fits in the window. Qwen2 writes a window but only uses it when
  // use_sliding_window is true.
  ASSIGN_OR_RETURN(bool use_window, fields.Bool("use_sliding_window",
                                                config.model_type != "qwen2"));
  if (use_window && fields.Has("sliding_window")) {
    ASSIGN_OR_RETURN(config.sliding_window,
                     fields.SizeInt("sliding_window", kMaxPositionEmbeddings));
  }

  ASSIGN_OR_RETURN(config.bos_token_id,
                   fields.OptionalTokenId("bos_token_id", -1));
  ASSIGN_OR_RETURN(std::optional<std::vector<int>> eos,
                   fields.IntOrIntList("eos_token_id"));
  if (eos.has_value()) config.eos_token_ids = *std::move(eos);
  RETURN_IF_ERROR(ValidateTokenIds(config, source));

  // Newer transformers write "dtype"; older ones "torch_dtype".
  ASSIGN_OR_RETURN(std::optional<std::string> dtype,
                   fields.String("torch_dtype"));
  if (!dtype.has_value()) {
    ASSIGN_OR_RETURN(dtype, fields.String("dtype"));
  }
  if (dtype.has_value()) config.torch_dtype = *std::move(dtype);
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& dir) {
  const std::filesystem::path config_path = dir / "config.json";
  ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
  ASSIGN_OR_RETURN(ModelConfig config,
                   ParseModelConfig(text, config_path.string()));

  const std::filesystem::path gen_path = dir / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(gen_path, ec)) return config;
  const std::string gen_source = gen_path.string();
  ASSIGN_OR_RETURN(std::string gen_text, ReadFile(gen_path));
  ASSIGN_OR_RETURN(Json gen, ParseObject(gen_text, gen_source));
  Fields fields(gen, gen_source);
  ASSIGN_OR_RETURN(config.bos_token_id,
                   fields.OptionalTokenId("bos_token_id", config.bos_token_id));
  ASSIGN_OR_RETURN(std::optional<std::vector<int>> eos,
                   fields.IntOrIntList("eos_token_id"));
  if (eos.has_value()) config.eos_token_ids = *std::move(eos);
  RETURN_IF_ERROR(ValidateTokenIds(config, gen_source));
  return config;
}

std::string ModelConfigToJson(const ModelConfig& config) {
  nlohmann::ordered_json json;
  json["architectures"] = nlohmann::ordered_json::array({config.architecture});
  json["model_type"] = config.model_type;
  json["hidden_size"] = config.hidden_size;
  json["intermediate_size"] = config.intermediate_size;
  json["num_hidden_layers"] = config.num_layers;
  json["num_attention_heads"] = config.num_heads;
  json["num_key_value_heads"] = config.num_kv_heads;
  json["head_dim"] = config.head_dim;
  json["vocab_size"] = config.vocab_size;
  json["max_position_embeddings"] = config.max_position_embeddings;
  json["rms_norm_eps"] = ShortestDouble(config.rms_norm_eps);
  json["rope_theta"] = ShortestDouble(config.rope_theta);
  const RopeScaling& scaling = config.rope_scaling;
  if (scaling.type == RopeScaling::Type::kLinear) {
    json["rope_scaling"] = {{"rope_type", "linear"},
                            {"factor", scaling.factor}};
  } else if (scaling.type == RopeScaling::Type::kLlama3) {
    json["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", scaling.factor},
                            {"low_freq_factor", scaling.low_freq_factor},
                            {"high_freq_factor", scaling.high_freq_factor},
                            {"original_max_position_embeddings",
                             scaling.original_max_position_embeddings}};
  }
  json["tie_word_embeddings"] = config.tie_word_embeddings;
  json["attention_bias"] = config.attention_bias;
  if (config.sliding_window > 0) {
    json["use_sliding_window"] = true;
    json["sliding_window"] = config.sliding_window;
  }
  json["hidden_act"] = "silu";
  AddTokenIds(config, json);
  json["torch_dtype"] = config.torch_dtype;
  return json.dump(2) + "\n";
}

std::string GenerationConfigToJson(const ModelConfig& config) {
  nlohmann::ordered_json json;
  AddTokenIds(config, json);
  return json.dump(2) + "\n";
}

}  // namespace hydra::model
