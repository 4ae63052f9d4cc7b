// Random weights for a synthetic checkpoint, drawn so that the model behaves
// like a trained one where numerics are concerned: attention that prefers
// some positions over others, and final logits spread widely enough that
// greedy decoding is decided by margins far above rounding error. Every
// value is a pure function of (seed, tensor name, index), so the file is the
// same whatever the chunking or the number of threads.
#ifndef HYDRA_BENCH_SYNTHETIC_WEIGHTS_H_
#define HYDRA_BENCH_SYNTHETIC_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace hydra::bench {

// Every tensor of `config` in Hugging Face's names and shapes (no
// lm_head.weight when the embeddings are tied; q/k/v biases when
// attention_bias), each with a generator, stored as `dtype`.
std::vector<model::TensorToWrite> SyntheticTensors(
    const model::ModelConfig& config, model::DType dtype, uint64_t seed);

}  // namespace hydra::bench

#endif  // HYDRA_BENCH_SYNTHETIC_WEIGHTS_H_
