#include "server/grpc/request_fields.h"

#include "absl/strings/str_cat.h"

namespace hydra::server::grpc {

RequestFields ToRequestFields(const v1::GenerateRequest& request) {
  RequestFields f;
  f.request_id = request.request_id();
  switch (request.input_case()) {
    case v1::GenerateRequest::kPrompt:
      f.prompt = PromptText{.text = request.prompt()};
      break;
    case v1::GenerateRequest::kPromptTokenIds: {
      const auto& ids = request.prompt_token_ids().ids();
      f.prompt = std::vector<int>(ids.begin(), ids.end());
      break;
    }
    default:
      break;  // refused by the validation, naming both fields
  }
  const v1::SamplingParams& s = request.sampling();
  if (s.has_temperature()) f.temperature = s.temperature();
  f.top_k = s.top_k();
  if (s.has_top_p()) f.top_p = s.top_p();
  f.min_p = s.min_p();
  if (s.has_repetition_penalty()) f.repetition_penalty = s.repetition_penalty();
  f.presence_penalty = s.presence_penalty();
  f.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) f.seed = s.seed();
  if (s.has_logprobs()) f.logprobs = s.logprobs();
  const v1::StoppingCriteria& stop = request.stopping();
  if (stop.has_max_tokens()) f.max_tokens = stop.max_tokens();
  f.min_tokens = stop.min_tokens();
  f.stop.assign(stop.stop().begin(), stop.stop().end());
  f.stop_token_ids.assign(stop.stop_token_ids().begin(),
                          stop.stop_token_ids().end());
  f.ignore_eos = stop.ignore_eos();
  f.priority = request.priority();
  switch (request.retention()) {
    case v1::RETENTION_UNSPECIFIED:
    case v1::RETENTION_NORMAL:
      break;
    case v1::RETENTION_PINNED:
      f.retention = "pinned";
      break;
    default:  // an enum value this server does not know: refused
      f.retention = absl::StrCat(static_cast<int>(request.retention()));
  }
  return f;
}

}  // namespace hydra::server::grpc
