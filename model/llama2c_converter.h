// Converts a llama2.c checkpoint (model.bin) and its SentencePiece tokenizer
// into hydra's one model format: a Hugging Face style folder.
#ifndef HYDRA_MODEL_LLAMA2C_CONVERTER_H_
#define HYDRA_MODEL_LLAMA2C_CONVERTER_H_

#include <filesystem>

#include "absl/status/status.h"

namespace hydra::model {

struct Llama2cConvertOptions {
  // Special tokens llama2.c does not record. stories15M ends a story by
  // emitting BOS (1), never EOS (2), so both default to 1.
  int bos_token_id = 1;
  int eos_token_id = 1;
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
};

// Writes config.json, generation_config.json, model.safetensors and a copy of
// tokenizer.model into `out_dir`. The Q and K projection rows are permuted
// from llama2.c's interleaved RoPE pairs (2i, 2i+1) to Hugging Face's
// rotate-half pairs (i, i + head_dim/2), so the engine has one RoPE.
absl::Status ConvertLlama2c(const std::filesystem::path& model_bin,
                            const std::filesystem::path& tokenizer_model,
                            const std::filesystem::path& out_dir,
                            const Llama2cConvertOptions& options = {});

}  // namespace hydra::model

#endif  // HYDRA_MODEL_LLAMA2C_CONVERTER_H_
