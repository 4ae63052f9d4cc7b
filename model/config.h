// The model's shape and special tokens, read from a Hugging Face style
// config.json (+ optional generation_config.json). One struct serves the
// Llama, Mistral and Qwen2 families: they differ only in these fields.
#ifndef HYDRA_MODEL_CONFIG_H_
#define HYDRA_MODEL_CONFIG_H_

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hydra::model {

// Hugging Face's "rope_scaling": how the rotary inverse frequencies are
// stretched for contexts beyond the pretraining length. kDefault is plain
// RoPE; kLinear divides every inverse frequency by `factor`; kLlama3 (Llama
// 3.1/3.2) divides only the low frequencies, keeps the high ones and blends
// the band between (worker/cpu RopeInverseFrequencies has the formula).
struct RopeScaling {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double factor = 1.0;                       // kLinear, kLlama3
  double low_freq_factor = 1.0;              // kLlama3
  double high_freq_factor = 4.0;             // kLlama3
  int original_max_position_embeddings = 0;  // kLlama3
};

// The largest sizes ParseModelConfig accepts, far above any checkpoint of
// the supported families (Qwen2.5-1M: 1010000 positions; Llama 3.1 405B:
// hidden 16384, 126 layers, 128 heads). They are a sanity bound on a file
// we read, not a claim of support: token and block counts, positions and
// per-token widths derived from them stay far inside int, so a hostile or
// broken config.json is refused with the field named instead of
// overflowing a size (products of two sizes, such as weight element
// counts, still need 64-bit arithmetic).
inline constexpr int kMaxPositionEmbeddings = 1 << 24;
inline constexpr int kMaxHiddenSize = 1 << 16;
inline constexpr int kMaxIntermediateSize = 1 << 18;
inline constexpr int kMaxLayers = 1024;
inline constexpr int kMaxHeads = 1024;
inline constexpr int kMaxHeadDim = 1024;
inline constexpr int kMaxVocabSize = 1 << 22;

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // < num_heads means grouped-query attention
  int head_dim = 0;      // hidden_size / num_heads unless the config says
  int vocab_size = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  // Mistral's local-attention window, 0 when none. Parsed but not applied:
  // full attention is exact while a sequence fits in the window, so a server
  // may cap its context here.
  int sliding_window = 0;
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype = "float32";
};

// Parses config.json text. `source` names the file in error messages.
// Refuses shapes the engine cannot serve (sizes outside [1, the kMax* above],
// heads that do not divide, unsupported architectures, rope scaling types
// other than "default", "linear" and "llama3").
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view source);

// Reads `dir`/config.json and, when present, `dir`/generation_config.json,
// whose eos_token_id (int or list) takes precedence over config.json's.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& dir);

// Serializes to config.json text that ParseModelConfig reads back.
std::string ModelConfigToJson(const ModelConfig& config);
// generation_config.json text: bos/eos ids.
std::string GenerationConfigToJson(const ModelConfig& config);

}  // namespace hydra::model

#endif  // HYDRA_MODEL_CONFIG_H_
