// The engine loop: one thread that owns the scheduler and the local worker
// and turns requests into streamed tokens, one step at a time:
//   take new requests and cancellations from the inbox
//   → schedule → run the step → sample → detokenize, check stops
//   → emit each request's new tokens → free what finished.
// With nothing to do it sleeps on the inbox.
#ifndef HYDRA_SERVER_ENGINE_H_
#define HYDRA_SERVER_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sampling_params.h"
#include "model/tokenizer.h"
#include "scheduler/block_manager.h"
#include "scheduler/scheduler.h"
#include "worker/model_runner.h"
#include "worker/sampler.h"

namespace hydra {

struct EngineConfig {
  int block_size = 16;
  int num_blocks = 0;  // KV blocks on each rank (from the memory budget)
  // Step composition: token and step-time budgets, running and prefill caps.
  scheduler::SchedulerConfig scheduling;
  bool enable_prefix_cache = true;
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

struct EngineRequest {
  std::vector<int> prompt_ids;
  SamplingParams sampling;
  bool seed_set = false;  // else the engine draws a seed
  StoppingCriteria stopping;
  int priority = 0;
  absl::Time deadline = absl::InfiniteFuture();
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
};

// When things happened to a request, for latency metrics.
struct RequestTimes {
  absl::Time arrival;
  absl::Time first_scheduled;
  absl::Time first_token;
  absl::Time finished;
};

// One message per request per step that produced something.
struct EngineOutput {
  uint64_t request_id = 0;
  std::vector<int> token_ids;  // new tokens (usually one)
  std::string text;            // new text (may be empty while held back)
  std::vector<worker::SampledToken> logprobs;  // per new token, when asked
  absl::Time time;  // when this step's tokens were sampled
  bool finished = false;
  scheduler::FinishReason finish_reason = scheduler::FinishReason::kNone;
  std::string error;                                    // with kError
  absl::StatusCode error_code = absl::StatusCode::kOk;  // with kError
  Usage usage;                                          // on the last message
  // The request's times so far (first_token set from its first token on,
  // finished on the last message): metrics observe TTFT at the first token.
  RequestTimes times;
};

// Called on the engine thread; must not block.
using OutputCallback = std::function<void(EngineOutput)>;

// Step-level counters, read from any thread.
struct EngineStats {
  int running = 0;
  int waiting = 0;
  int kv_used = 0;
  int kv_free = 0;
  int kv_cached = 0;
  int kv_total = 0;
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t prefix_queries = 0;  // tokens
  int64_t prefix_hits = 0;     // tokens
  int64_t prompt_tokens_computed = 0;
  int64_t generation_tokens = 0;
  int peak_kv_used = 0;
  int64_t peak_kv_waste_slots =
      0;                     // allocated slots not holding a token, at peak
  int partial_prefills = 0;  // running sequences still in prefill
  std::map<int, int> waiting_by_priority;
  std::map<int, int64_t> preemptions_by_priority;
  scheduler::StepCostModel::Coefficients step_cost;  // the fitted model
};

// Per step, for metrics.
struct StepReport {
  absl::Duration duration;  // scheduling to emitted tokens
  int prefill_tokens = 0;
  int decode_tokens = 0;
  absl::Duration predicted;  // the cost model's forecast
  // Time in tensor-parallel collectives (zero in a world of one).
  absl::Duration collective_time;
};
using StepObserver = std::function<void(const StepReport&)>;

class Engine {
 public:
  Engine(const EngineConfig& config, std::unique_ptr<worker::StepRunner> runner,
         std::unique_ptr<model::Tokenizer> tokenizer);
  ~Engine();  // stops the loop; unfinished requests end as cancelled

  // Queues a request; `on_output` receives its outputs. Returns its id.
  // Refuses requests the engine could never serve (checked fields named).
  absl::StatusOr<uint64_t> Submit(EngineRequest request,
                                  OutputCallback on_output);
  // Stops a request within one step; its last output says kCancelled.
  void Cancel(uint64_t request_id);

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
  const model::Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineConfig& config() const { return config_; }

 private:
  struct Request;  // per-request state on the engine thread

  void Loop();
  void Step();
  void DrainInbox();
  void FinishRequest(uint64_t id, scheduler::FinishReason reason,
                     const absl::Status& error = absl::OkStatus());
  void UpdateStats();

  EngineConfig config_;
  std::unique_ptr<worker::StepRunner> runner_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  scheduler::BlockManager blocks_;
  scheduler::Scheduler scheduler_;

  // Engine thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::vector<float> logits_;
  std::vector<float> masked_row_;
  std::vector<int> greedy_tokens_;  // when the runner sampled on its device

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Request>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> cancels_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  StepObserver step_observer_ ABSL_GUARDED_BY(mu_);
  std::function<void(const absl::Status&)> fatal_handler_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace hydra

#endif  // HYDRA_SERVER_ENGINE_H_
