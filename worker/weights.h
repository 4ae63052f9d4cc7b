// The model's weights as the CPU forward pass wants them: projections packed
// for the GEMM kernel in the chosen WeightType, with Q/K/V fused into one
// matrix and gate/up into another, so each layer runs four matrix products
// instead of seven. Packing reads the checkpoint's memory directly (no fp32
// copy), in one pass. A tied lm_head is stored once and serves as the
// embedding table too.
//
// Under tensor parallelism (Megatron style) a rank loads only its slice:
// its query heads and the KV heads they read (Q/K/V rows), the matching
// columns of the output projection, its share of the MLP's intermediate
// features (gate/up rows, down columns) and of the vocabulary (embedding and
// lm_head rows). Norms are replicated; they are tiny.
#ifndef HYDRA_WORKER_WEIGHTS_H_
#define HYDRA_WORKER_WEIGHTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "worker/cpu/kernels.h"
#include "worker/non_finite_weights.h"

namespace hydra::worker {

// Which slice of the model a rank holds.
struct Shard {
  int rank = 0;
  int size = 1;

  // Checks that heads, KV heads and intermediate features divide by `size`;
  // the error lists the sizes that would work.
  static absl::Status Check(const model::ModelConfig& config, int size);
  int heads(const model::ModelConfig& c) const { return c.num_heads / size; }
  int kv_heads(const model::ModelConfig& c) const {
    return c.num_kv_heads / size;
  }
  int intermediate(const model::ModelConfig& c) const {
    return c.intermediate_size / size;
  }
  // Vocabulary rows per rank (the last rank's share is padded).
  int vocab_per_rank(const model::ModelConfig& c) const {
    return (c.vocab_size + size - 1) / size;
  }
  int vocab_begin(const model::ModelConfig& c) const {
    return rank * vocab_per_rank(c);
  }
  int vocab_end(const model::ModelConfig& c) const {
    return std::min(c.vocab_size, (rank + 1) * vocab_per_rank(c));
  }
};

struct LayerWeights {
  std::vector<float> attn_norm;
  cpu::PackedMatrix
      qkv;  // [(heads + 2 * kv_heads) * head_dim, hidden], local heads
  std::vector<float> qkv_bias;  // empty unless the model has attention bias
  cpu::PackedMatrix o;          // [hidden, local heads * head_dim]
  std::vector<float> mlp_norm;
  cpu::PackedMatrix gate_up;  // [2 * local intermediate, hidden]
  cpu::PackedMatrix down;     // [hidden, local intermediate]
};

struct ModelWeights {
  // [local vocab rows, hidden]; empty when tied (lm_head serves).
  cpu::PackedMatrix embedding;
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  cpu::PackedMatrix lm_head;  // [vocab_per_rank, hidden] (padded)
  // This shard's NaN and Inf values as held, counted while loading.
  NonFiniteWeights non_finite;

  const cpu::PackedMatrix& embedding_table() const {
    return embedding.rows() > 0 ? embedding : lm_head;
  }

  // Reads and checks every tensor the config calls for (this shard's slice
  // only); an error names the file and the tensor that is missing or
  // misshapen. Non-finite values are no error: they are counted in
  // `non_finite`, for the caller to warn of.
  static absl::StatusOr<ModelWeights> Load(
      const model::Checkpoint& checkpoint, const model::ModelConfig& config,
      const Shard& shard = {}, cpu::WeightType type = cpu::WeightType::kF32);
  size_t bytes() const;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_WEIGHTS_H_
