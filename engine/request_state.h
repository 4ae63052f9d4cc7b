// One request's state on the engine thread: its sequence (owned by the
// scheduler once admitted), how its tokens are sampled and when it stops,
// the text decoded so far, and where its outputs go.
#ifndef HYDRA_ENGINE_REQUEST_STATE_H_
#define HYDRA_ENGINE_REQUEST_STATE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/stop_strings.h"
#include "model/tokenizer.h"
#include "scheduler/sequence.h"

namespace hydra::engine {

struct RequestState {
  RequestState(uint64_t id, EngineRequest r, const model::Tokenizer& tokenizer,
               OutputCallback callback)
      : id(id),
        sequence(std::make_unique<scheduler::Sequence>(
            id, r.prompt_ids, r.priority, r.retention)),
        prefill_only(r.prefill_only),
        sampling(r.sampling),
        stopping(r.stopping),
        sampler(r.sampling),
        detokenizer(tokenizer, r.prompt_ids),
        stops(r.stopping.stop),
        on_output(std::move(callback)),
        deadline(r.deadline) {}

  uint64_t id;
  std::unique_ptr<scheduler::Sequence>
      sequence;  // until the scheduler takes it
  bool prefill_only;
  scheduler::Sequence* seq = nullptr;  // from then on
  SamplingParams sampling;
  StoppingCriteria stopping;
  Sampler sampler;
  model::IncrementalDetokenizer detokenizer;
  StopStringMatcher stops;
  OutputCallback on_output;
  absl::Time deadline;
  RequestTimes times;
};

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_REQUEST_STATE_H_
