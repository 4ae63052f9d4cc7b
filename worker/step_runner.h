// What the engine needs of a worker, whichever device runs the forward
// pass: run a StepPlan and return the logits rows it asks for, serve the
// worker loop on ranks 1..N-1, and stop it. worker::ModelRunner (CPU) and
// gpu::CudaRunner (worker/cuda/) implement it.
#ifndef HYDRA_WORKER_STEP_RUNNER_H_
#define HYDRA_WORKER_STEP_RUNNER_H_

#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hydra/internal/step.pb.h"
#include "model/config.h"
#include "worker/communicator.h"
#include "worker/kv_tier_store.h"
#include "worker/non_finite_weights.h"

namespace hydra::worker {

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Runs `plan` and returns one row of vocab_size floats per logits row, in
  // the order asked (rank 0 first broadcasts the plan to the workers).
  virtual absl::Status Step(const internal::StepPlan& plan,
                            std::vector<float>& logits) = 0;
  // Ranks 1..N-1: run plans from rank 0 until SHUTDOWN.
  virtual absl::Status RunWorkerLoop() = 0;
  // Rank 0: tells the workers to leave their loop.
  virtual absl::Status ShutdownWorkers() = 0;
  virtual const model::ModelConfig& config() const = 0;
  // Time the last Step spent in collectives.
  virtual absl::Duration last_collective_time() const = 0;
  // Bytes of this rank's KV pool, in the runner's own element type.
  virtual int64_t kv_cache_bytes() const = 0;
  // The number formats the weights and the KV pool are held in ("fp32",
  // "bf16", "f16", "int8") and the weights' resident bytes on this rank.
  virtual std::string weight_dtype() const = 0;
  virtual std::string kv_cache_dtype() const = 0;
  virtual int64_t weight_bytes() const = 0;
  // The NaN and Inf values among this rank's weights, counted at load.
  virtual const NonFiniteWeights& non_finite_weights() const = 0;

  // This rank's KV tiers below the pool (null: none). Plans name tier
  // traffic only when rank 0's runner has them.
  virtual const KvTierStore* kv_tiers() const { return nullptr; }
  // Indices into the last plan's kv_loads that did not arrive on every
  // rank (missing or corrupt somewhere): those tokens must be computed.
  virtual std::span<const int> failed_kv_loads() const { return {}; }

  // Runners that sample on their device say so here and implement
  // StepGreedy: Step, then the argmax of each logits row (the lowest id
  // among ties, as engine::Argmax), with only the token ids coming back.
  virtual bool can_sample_greedy() const { return false; }
  virtual absl::Status StepGreedy(const internal::StepPlan& plan,
                                  std::vector<int>& tokens) {
    return absl::UnimplementedError("this runner samples on the host");
  }
};

// Checks a plan against a model and a KV pool: lengths agree, ids,
// positions, slots, blocks and logits rows are in range, and every
// sequence's query tokens sit at the end of its context. Positions must be
// below `max_positions`, the positions the runner's RoPE table covers (the
// engine's max_model_len); 0 means the model's max_position_embeddings.
absl::Status ValidateStepPlan(const internal::StepPlan& plan,
                              const model::ModelConfig& config, int num_blocks,
                              int block_size, int max_positions = 0);

// The worker loop of ranks 1..N-1, for any runner: receive each plan from
// rank 0 over `comm` and run `forward` on it, until a SHUTDOWN plan (OK) or
// a failure (its status).
absl::Status ServeStepPlans(
    Communicator& comm,
    absl::FunctionRef<absl::Status(const internal::StepPlan&)> forward);
// One step's lower-tier traffic on this rank's `store` (null: every load
// fails). Saves and drops are carried out at construction, before the
// step's copies and forward pass may overwrite a saved block; loads then
// run on their own thread beside the forward pass, which never touches
// their target blocks (ValidateStepPlan checks), so a hit below the pool
// does not stall the batch. Finish waits for them and agrees with the other
// ranks on which arrived everywhere (a collective: every rank calls it for
// every plan, after the forward pass). `beside_forward` false runs the
// loads at construction, on the calling thread (a GPU runner copies on its
// own stream, which orders them before the forward pass).
class KvTierTraffic {
 public:
  KvTierTraffic(
      KvTierStore* store, const internal::StepPlan& plan,
      absl::FunctionRef<void(int, std::span<std::byte>)> read_block,
      std::function<void(int, std::span<const std::byte>)> write_block,
      bool beside_forward = true);
  ~KvTierTraffic();  // joins the loads
  KvTierTraffic(const KvTierTraffic&) = delete;
  KvTierTraffic& operator=(const KvTierTraffic&) = delete;

  // `failed_loads` gets the indices of the plan's kv_loads that did not
  // arrive on every rank.
  absl::Status Finish(Communicator& comm, std::vector<int>& failed_loads);

 private:
  const internal::StepPlan& plan_;
  std::vector<float> ok_;
  std::thread loads_;
};

// Rank 0: sends the SHUTDOWN plan (nothing in a world of one).
absl::Status SendShutdown(Communicator& comm);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_STEP_RUNNER_H_
