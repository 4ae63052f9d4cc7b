// Runs one step of the transformer for a flat batch of tokens from many
// sequences (prefill chunks and decode tokens mixed) over the paged KV cache.
#ifndef HYDRA_WORKER_MODEL_RUNNER_H_
#define HYDRA_WORKER_MODEL_RUNNER_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hydra/internal/step.pb.h"
#include "model/config.h"
#include "worker/communicator.h"
#include "worker/cpu/kernels.h"
#include "worker/kv_cache.h"
#include "worker/precision.h"
#include "worker/step_runner.h"
#include "worker/weights.h"

namespace hydra::worker {

struct RunnerOptions {
  int block_size = 16;
  int num_blocks = 0;
  // Names for ResolvePrecision (worker/precision.h).
  std::string weight_dtype = "auto";
  std::string kv_cache_dtype = "auto";
  // Positions the RoPE table covers; 0 = the model's max_position_embeddings.
  int max_positions = 0;
  // KV tiers below the pool (none by default).
  KvTierOptions kv_tiers{};
};

class ModelRunner final : public StepRunner {
 public:
  // Loads config and this rank's slice of the weights from a model folder
  // and sizes the KV cache (this rank's KV heads). `comm` (not owned; null
  // = a world of one) must outlive the runner. Positions run below
  // `max_positions` (the engine's max_model_len, at most the model's
  // max_position_embeddings; 0 = all of them): the RoPE table covers only
  // those, and plans beyond them are refused.
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(
      const std::filesystem::path& model_dir, const RunnerOptions& options,
      Communicator* comm = nullptr);
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(
      const std::filesystem::path& model_dir, int block_size, int num_blocks,
      Communicator* comm = nullptr) {
    return Load(
        model_dir,
        RunnerOptions{.block_size = block_size, .num_blocks = num_blocks},
        comm);
  }
  ModelRunner(model::ModelConfig config, ModelWeights weights,
              const KvCacheShape& kv_shape, int num_blocks, int max_positions,
              Communicator* comm, Shard shard);

  // Runs `plan` and returns logits for its logits_rows, one row of
  // vocab_size floats each, in the order asked. A plan that names tokens,
  // positions, slots or blocks outside their ranges is refused. On rank 0 of
  // a tensor-parallel world the plan is first broadcast to the workers.
  absl::Status Step(const internal::StepPlan& plan,
                    std::vector<float>& logits) override;

  // Ranks 1..N-1: receive plans from rank 0 and run them until SHUTDOWN (or
  // until a collective fails, whose status is returned).
  absl::Status RunWorkerLoop() override;
  // Rank 0: tells the workers to leave their loop.
  absl::Status ShutdownWorkers() override;

  const model::ModelConfig& config() const override { return config_; }
  const Shard& shard() const { return shard_; }
  // Time the last Step spent in collectives (zero in a world of one).
  int64_t kv_cache_bytes() const override {
    return static_cast<int64_t>(kv_cache_.bytes());
  }
  absl::Duration last_collective_time() const override {
    return collective_time_;
  }
  const KvCache& kv_cache() const { return kv_cache_; }
  int64_t weight_bytes() const override {
    return static_cast<int64_t>(weights_.bytes());
  }
  std::string weight_dtype() const override {
    return std::string(cpu::WeightTypeName(weights_.lm_head.type()));
  }
  std::string kv_cache_dtype() const override {
    return std::string(cpu::KvTypeName(kv_cache_.shape().type));
  }
  const NonFiniteWeights& non_finite_weights() const override {
    return weights_.non_finite;
  }
  const KvTierStore* kv_tiers() const override { return tiers_.get(); }
  std::span<const int> failed_kv_loads() const override {
    return failed_kv_loads_;
  }
  // Gives the runner its lower KV tiers (before the first step).
  void set_kv_tiers(std::unique_ptr<KvTierStore> tiers) {
    tiers_ = std::move(tiers);
  }

 private:
  absl::Status Validate(const internal::StepPlan& plan) const;
  absl::Status Forward(const internal::StepPlan& plan,
                       std::vector<float>& logits);
  // The copies and the transformer, beside the plan's tier loads.
  absl::Status ForwardTokens(const internal::StepPlan& plan,
                             std::vector<float>& logits);
  // Runs one collective, adding its time to collective_time_.
  template <typename F>
  absl::Status Collective(F f) {
    const absl::Time start = absl::Now();
    absl::Status status = f();
    collective_time_ += absl::Now() - start;
    return status;
  }
  void Resize(int tokens);

  model::ModelConfig config_;
  LocalCommunicator local_comm_;
  Communicator* comm_;
  Shard shard_;
  ModelWeights weights_;
  KvCache kv_cache_;
  cpu::RopeTable rope_;
  std::unique_ptr<KvTierStore> tiers_;
  std::vector<int> failed_kv_loads_;

  // Activations, reused across steps: [tokens, width] each.
  std::vector<float> x_, h_, qkv_, attn_, proj_, gate_up_, act_, local_logits_;
  std::vector<const int32_t*> token_block_table_;
  absl::Duration collective_time_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_MODEL_RUNNER_H_
