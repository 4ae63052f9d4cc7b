// The model's weights as the CPU forward pass wants them: projections packed
// for the GEMM kernel, with Q/K/V fused into one matrix and gate/up into
// another, so each layer runs four matrix products instead of seven.
#ifndef HYDRA_WORKER_WEIGHTS_H_
#define HYDRA_WORKER_WEIGHTS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "worker/cpu/kernels.h"

namespace hydra::worker {

struct LayerWeights {
  std::vector<float> attn_norm;
  cpu::PackedMatrix qkv;        // [(heads + 2 * kv_heads) * head_dim, hidden]
  std::vector<float> qkv_bias;  // empty unless the model has attention bias
  cpu::PackedMatrix o;          // [hidden, heads * head_dim]
  std::vector<float> mlp_norm;
  cpu::PackedMatrix gate_up;  // [2 * intermediate, hidden]
  cpu::PackedMatrix down;     // [hidden, intermediate]
};

struct ModelWeights {
  std::vector<float> embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  cpu::PackedMatrix lm_head;  // the embedding again when tied

  // Reads and checks every tensor the config calls for; an error names the
  // file and the tensor that is missing or misshapen.
  static absl::StatusOr<ModelWeights> Load(const model::Checkpoint& checkpoint,
                                           const model::ModelConfig& config);
  size_t bytes() const;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_WEIGHTS_H_
