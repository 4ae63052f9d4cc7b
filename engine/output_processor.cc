#include "engine/output_processor.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace hydra::engine {
namespace {

bool Contains(const std::vector<int>& ids, int id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

OutputProcessor::OutputProcessor(const model::ModelConfig& model,
                                 int max_model_len)
    : model_(model), max_model_len_(max_model_len) {}

bool OutputProcessor::PlainGreedy(const RequestState& req) {
  const SamplingParams& p = req.sampling;
  return (p.temperature < 1e-5f || p.top_k == 1) &&
         p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && !p.logprobs.has_value() &&
         req.seq->num_output() >= req.stopping.min_tokens;
}

TokenDecision OutputProcessor::Sample(RequestState& req,
                                      std::span<const float> logits,
                                      absl::Time now) {
  const StoppingCriteria& stop = req.stopping;
  const scheduler::Sequence& seq = *req.seq;
  // Before min_tokens, the tokens that would end the sequence are masked.
  if (seq.num_output() < stop.min_tokens) {
    const int vocab = static_cast<int>(logits.size());
    masked_row_.assign(logits.begin(), logits.end());
    if (!stop.ignore_eos) {
      for (int id : model_.eos_token_ids) masked_row_[id] = -INFINITY;
    }
    for (int id : stop.stop_token_ids) {
      if (id >= 0 && id < vocab) masked_row_[id] = -INFINITY;
    }
    logits = masked_row_;
  }
  return Accept(req, req.sampler.Sample(logits, seq.prompt(), seq.output()),
                now);
}

TokenDecision OutputProcessor::Accept(RequestState& req, SampledToken sampled,
                                      absl::Time now) {
  const StoppingCriteria& stop = req.stopping;
  const scheduler::Sequence& seq = *req.seq;
  if (req.times.first_token == absl::Time()) req.times.first_token = now;

  TokenDecision d;
  d.token_id = sampled.token_id;
  d.output.request_id = req.id;
  d.output.time = now;
  const bool is_eos = Contains(model_.eos_token_ids, d.token_id);
  const bool is_stop_id = Contains(stop.stop_token_ids, d.token_id);
  if ((is_eos && !stop.ignore_eos) || is_stop_id) {
    d.finish = FinishReason::kStop;
  } else {
    d.append = true;
    d.output.token_ids.push_back(d.token_id);
    if (req.sampling.logprobs.has_value()) {
      d.output.logprobs.push_back(std::move(sampled));
    }
    auto delta = req.detokenizer.Push(d.token_id);
    StopStringMatcher::Result cut =
        req.stops.Push(delta.ok() ? *delta : std::string());
    d.output.text = std::move(cut.text);
    if (cut.stopped) {
      d.finish = FinishReason::kStop;
    } else if (seq.num_output() + 1 >= stop.max_tokens ||
               seq.num_tokens() + 1 >= max_model_len_) {
      // Prompt and output together never pass max_model_len, as the
      // request validation promises (max_tokens <= max_model_len - prompt).
      d.finish = FinishReason::kLength;
    }
  }
  // Text held back for a possible stop string is released, unless a stop
  // string was what ended the sequence.
  if (d.finish.has_value() &&
      (*d.finish != FinishReason::kStop || is_eos || is_stop_id)) {
    auto tail = req.detokenizer.Flush();
    d.output.text += req.stops.Push(tail.ok() ? *tail : std::string()).text;
    d.output.text += req.stops.Flush();
  }
  return d;
}

TokenDecision OutputProcessor::EndPrefill(RequestState& req, absl::Time now) {
  TokenDecision d;
  d.output.request_id = req.id;
  d.output.time = now;
  d.finish = FinishReason::kLength;
  return d;
}

}  // namespace hydra::engine
