#include "bench/synthetic_presets.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace hydra::bench {
namespace {

using model::DType;
using model::ModelConfig;
using model::RopeScaling;

// Qwen/Qwen2.5-0.5B-Instruct config.json and generation_config.json. Qwen2
// always has q/k/v biases. Its tokenizer prepends no BOS; the config still
// names 151643 (<|endoftext|>) as bos_token_id, recorded as published.
SyntheticPreset Qwen25Half() {
  ModelConfig c;
  c.architecture = "Qwen2ForCausalLM";
  c.model_type = "qwen2";
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_layers = 24;
  c.num_heads = 14;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = 151936;
  c.max_position_embeddings = 32768;
  c.rms_norm_eps = 1e-6f;
  c.rope_theta = 1000000.0f;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645, 151643};  // <|im_end|>, <|endoftext|>
  c.torch_dtype = "bfloat16";
  return {c, DType::kBF16, "models/tokenizers/qwen3/tokenizer.json"};
}

// meta-llama/Llama-3.2-1B-Instruct config.json and generation_config.json.
SyntheticPreset Llama32OneB() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = 2048;
  c.intermediate_size = 8192;
  c.num_layers = 16;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 64;
  c.vocab_size = 128256;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 32.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 8192;
  c.tie_word_embeddings = true;
  c.bos_token_id = 128000;                     // <|begin_of_text|>
  c.eos_token_ids = {128001, 128008, 128009};  // end_of_text, eom, eot
  c.torch_dtype = "bfloat16";
  return {c, DType::kBF16, "models/tokenizers/llama3_1/tokenizer.json"};
}

// The tool's original shape (TinyLlama 1.1B, untied, F32), kept for the
// benchmarks that were timed with it.
SyntheticPreset LlamaTiny() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = 2048;
  c.intermediate_size = 5632;
  c.num_layers = 22;
  c.num_heads = 32;
  c.num_kv_heads = 4;
  c.head_dim = 0;  // hidden_size / num_heads, after any override
  c.vocab_size = 32000;
  c.max_position_embeddings = 2048;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  return {c, DType::kF32, "models/stories15M/tokenizer.model"};
}

}  // namespace

absl::StatusOr<SyntheticPreset> FindSyntheticPreset(std::string_view name) {
  if (name == "qwen2.5-0.5b") return Qwen25Half();
  if (name == "llama3.2-1b") return Llama32OneB();
  if (name == "llama-tiny" || name.empty()) return LlamaTiny();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preset \"", std::string(name),
                   "\"; known: qwen2.5-0.5b, llama3.2-1b, llama-tiny"));
}

}  // namespace hydra::bench
