// Runs one step of the transformer for a flat batch of tokens from many
// sequences (prefill chunks and decode tokens mixed) over the paged KV cache.
#ifndef HYDRA_WORKER_MODEL_RUNNER_H_
#define HYDRA_WORKER_MODEL_RUNNER_H_

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "hydra/internal/step.pb.h"
#include "model/config.h"
#include "worker/cpu/kernels.h"
#include "worker/kv_cache.h"
#include "worker/weights.h"

namespace hydra::worker {

class ModelRunner {
 public:
  // Loads config and weights from a model folder and sizes the KV cache.
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(
      const std::filesystem::path& model_dir, int block_size, int num_blocks);
  ModelRunner(model::ModelConfig config, ModelWeights weights, int block_size,
              int num_blocks);

  // Runs `plan` and returns logits for its logits_rows, one row of
  // vocab_size floats each, in the order asked. A plan that names tokens,
  // positions, slots or blocks outside their ranges is refused.
  absl::Status Step(const internal::StepPlan& plan, std::vector<float>& logits);

  const model::ModelConfig& config() const { return config_; }
  const KvCache& kv_cache() const { return kv_cache_; }
  size_t weight_bytes() const { return weights_.bytes(); }

 private:
  absl::Status Validate(const internal::StepPlan& plan) const;
  void Resize(int tokens);

  model::ModelConfig config_;
  ModelWeights weights_;
  KvCache kv_cache_;
  cpu::RopeTable rope_;

  // Activations, reused across steps: [tokens, width] each.
  std::vector<float> x_, h_, qkv_, attn_, proj_, gate_up_, act_;
  std::vector<const int32_t*> token_block_table_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_MODEL_RUNNER_H_
