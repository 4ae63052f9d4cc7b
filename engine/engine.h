// The engine loop: one thread that owns the scheduler and the local worker
// and turns requests into streamed tokens, one step at a time:
//   take new requests and cancellations from the inbox
//   → schedule → run the step → process each sampled row (output_processor)
//   → commit tokens and finished sequences → emit the outputs.
// With nothing to do it sleeps on the inbox.
#ifndef HYDRA_ENGINE_ENGINE_H_
#define HYDRA_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_stats.h"
#include "engine/output_processor.h"
#include "engine/request.h"
#include "engine/request_state.h"
#include "model/tokenizer.h"
#include "scheduler/block_manager.h"
#include "scheduler/scheduler.h"
#include "worker/step_runner.h"

namespace hydra::engine {

struct EngineConfig {
  int block_size = 16;
  int num_blocks = 0;  // KV blocks on each rank (from the memory budget)
  // Step composition: token and step-time budgets, running and prefill caps.
  scheduler::SchedulerConfig scheduling;
  bool enable_prefix_cache = true;
  // Pinned KV blocks (Retention::kPinned) that are never evicted.
  int max_pinned_blocks = 0;
  // Requests waiting for admission beyond which Submit refuses new ones
  // (RESOURCE_EXHAUSTED): back-pressure instead of an unbounded queue.
  int max_waiting = 1 << 30;
  // The most tokens, prompt and output together, of one sequence: a longer
  // prompt is refused, generation ends with kLength when it is reached.
  // LoadEngine sets it (ResolveMaxModelLen) so that one such sequence fits
  // num_blocks; 0 = the runner's max_position_embeddings. Engine::config()
  // always reports the value in force.
  int max_model_len = 0;
};

class Engine {
 public:
  Engine(const EngineConfig& config, std::unique_ptr<worker::StepRunner> runner,
         std::unique_ptr<model::Tokenizer> tokenizer);
  ~Engine();  // stops the loop; unfinished requests end as cancelled

  // Queues a request; `on_output` receives its outputs. Returns its id.
  // Refuses requests the engine could never serve (checked fields named).
  absl::StatusOr<uint64_t> Submit(EngineRequest request,
                                  OutputCallback on_output);
  // Stops a request within one step; its last output says `reason`
  // (kDeadline when the front end saw the call's deadline pass).
  void Cancel(uint64_t request_id,
              FinishReason reason = FinishReason::kCancelled);

  void SetStepObserver(StepObserver observer);
  // Called once, on the engine thread, when a step fails because a
  // tensor-parallel peer or a collective failed (UNAVAILABLE). The engine
  // cannot go on: the ranks no longer agree on the step. Every request ends
  // with UNAVAILABLE and later submissions are refused.
  void SetFatalErrorHandler(std::function<void(const absl::Status&)> handler);
  EngineStats stats() const;
  const model::ModelConfig& model_config() const { return runner_->config(); }
  // Bytes of KV cache on each rank (all ranks hold equal shards).
  int64_t kv_cache_bytes() const { return runner_->kv_cache_bytes(); }
  std::string weight_dtype() const { return runner_->weight_dtype(); }
  std::string kv_cache_dtype() const { return runner_->kv_cache_dtype(); }
  int64_t weight_bytes() const { return runner_->weight_bytes(); }
  // The NaN and Inf weights rank 0 holds (under tensor parallelism, its own
  // shard's: each rank warns of its own at load).
  const worker::NonFiniteWeights& non_finite_weights() const {
    return runner_->non_finite_weights();
  }
  const model::Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineConfig& config() const { return config_; }
  // The tokens of a computed prompt of `prompt_tokens` that the prefix cache
  // holds: its full blocks (0 without a prefix cache).
  int PrefixCachedTokens(int prompt_tokens) const {
    if (!config_.enable_prefix_cache) return 0;
    return prompt_tokens / config_.block_size * config_.block_size;
  }

 private:
  // An output ready to go to its request's callback; owns the request's
  // state when this output is its last.
  struct Emission {
    RequestState* request = nullptr;
    std::unique_ptr<RequestState> finished;
    EngineOutput output;
  };

  void Loop();
  void Step();
  // The parts of a step.
  void MarkScheduled(const scheduler::ScheduledStep& step, absl::Time start);
  bool Run(const scheduler::ScheduledStep& step, bool device_greedy);
  std::vector<Emission> ProcessAndCommit(const scheduler::ScheduledStep& step,
                                         bool device_greedy);
  // The rows of one sequence, from logits row `row` on: the first one, then
  // one more for each draft matched by the token sampled before it.
  Emission VerifyAndCommit(RequestState& req, std::span<const int> drafts,
                           int row, bool device_greedy, absl::Time now);
  TokenDecision Decide(RequestState& req, int row, bool device_greedy,
                       absl::Time now);
  // Commits `decision` for `req` and adds its output to `e`.
  void Commit(RequestState& req, TokenDecision decision, Emission& e);
  void RecordStep(const scheduler::ScheduledStep& step, absl::Time start,
                  int generated);
  // Tokens each decoding sequence emitted this step, and the drafts
  // proposed and accepted (for stats and the step report).
  struct DecodeTally {
    std::vector<int> tokens_per_decode;
    int64_t proposed = 0;
    int64_t accepted = 0;
  };

  void DrainInbox();
  bool broken() const;
  void FailAll(const absl::Status& error);
  void FinishRequest(uint64_t id, FinishReason reason,
                     const absl::Status& error = absl::OkStatus());
  void UpdateStats();

  EngineConfig config_;
  std::unique_ptr<worker::StepRunner> runner_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  scheduler::BlockManager blocks_;
  scheduler::Scheduler scheduler_;

  // Engine thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  OutputProcessor processor_;
  std::vector<float> logits_;
  std::vector<int> greedy_tokens_;  // when the runner sampled on its device
  DecodeTally tally_;               // of the current step

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RequestState>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, FinishReason>> cancels_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  StepObserver step_observer_ ABSL_GUARDED_BY(mu_);
  std::function<void(const absl::Status&)> fatal_handler_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_ENGINE_H_
