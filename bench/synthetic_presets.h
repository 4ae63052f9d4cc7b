// Model shapes for hydra_make_synthetic_model: the published Hugging Face
// configs of the small models hydra is developed against, so that random
// checkpoints have exactly the real tensors, sizes and special ids.
#ifndef HYDRA_BENCH_SYNTHETIC_PRESETS_H_
#define HYDRA_BENCH_SYNTHETIC_PRESETS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace hydra::bench {

struct SyntheticPreset {
  model::ModelConfig config;
  model::DType dtype;     // what the real checkpoint ships in
  std::string tokenizer;  // default tokenizer file, relative to the repo root
};

// "qwen2.5-0.5b" (Qwen2.5-0.5B-Instruct), "llama3.2-1b"
// (Llama-3.2-1B-Instruct), or "llama-tiny" (the TinyLlama 1.1B shape with
// the stories15M SentencePiece vocabulary; also what "" means).
absl::StatusOr<SyntheticPreset> FindSyntheticPreset(std::string_view name);

}  // namespace hydra::bench

#endif  // HYDRA_BENCH_SYNTHETIC_PRESETS_H_
