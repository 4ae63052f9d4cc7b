#include "server/http/request_fields.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "hydra/v1/inference.pb.h"
#include "server/request_validation.h"

namespace hydra::server {
namespace {

v1::GenerateRequest ToProto(const RequestFields& f) {
  v1::GenerateRequest r;
  r.set_request_id(f.request_id);
  if (const auto* text = std::get_if<PromptText>(&f.prompt)) {
    r.set_prompt(text->text);
  } else if (const auto* ids = std::get_if<std::vector<int>>(&f.prompt)) {
    r.mutable_prompt_token_ids()->mutable_ids()->Add(ids->begin(), ids->end());
  }
  v1::SamplingParams& s = *r.mutable_sampling();
  if (f.temperature) s.set_temperature(*f.temperature);
  s.set_top_k(f.top_k);
  if (f.top_p) s.set_top_p(*f.top_p);
  s.set_min_p(f.min_p);
  if (f.repetition_penalty) s.set_repetition_penalty(*f.repetition_penalty);
  s.set_presence_penalty(f.presence_penalty);
  s.set_frequency_penalty(f.frequency_penalty);
  if (f.seed) s.set_seed(*f.seed);
  if (f.logprobs) s.set_logprobs(*f.logprobs);
  v1::StoppingCriteria& t = *r.mutable_stopping();
  if (f.max_tokens) t.set_max_tokens(*f.max_tokens);
  t.set_min_tokens(f.min_tokens);
  for (const std::string& stop : f.stop) t.add_stop(stop);
  t.mutable_stop_token_ids()->Add(f.stop_token_ids.begin(),
                                  f.stop_token_ids.end());
  t.set_ignore_eos(f.ignore_eos);
  r.set_priority(f.priority);
  return r;
}

// The gRPC validator's name for a field, and the caller's.
std::vector<std::pair<std::string_view, std::string_view>> Renames(
    const FieldNames& n) {
  return {{"input", n.prompt},
          {"request_id", n.request_id},
          {"prompt_token_ids", n.prompt_token_ids},
          {"prompt", n.prompt},
          {"sampling.temperature", n.temperature},
          {"sampling.top_k", n.top_k},
          {"sampling.top_p", n.top_p},
          {"sampling.min_p", n.min_p},
          {"sampling.repetition_penalty", n.repetition_penalty},
          {"sampling.presence_penalty", n.presence_penalty},
          {"sampling.frequency_penalty", n.frequency_penalty},
          {"sampling.logprobs", n.logprobs},
          {"stopping.max_tokens", n.max_tokens},
          {"stopping.min_tokens", n.min_tokens},
          {"stopping.stop_token_ids", n.stop_token_ids},
          {"stopping.stop", n.stop},
          {"priority", n.priority}};
}

absl::Status Rename(const absl::Status& status, const FieldNames& names) {
  const std::string full(status.message());
  const std::string_view message = full;
  const size_t colon = message.find(": ");
  if (colon == std::string_view::npos) return status;
  const std::string_view field = message.substr(0, colon);
  for (const auto& [from, to] : Renames(names)) {
    if (field == from ||
        (field.substr(0, from.size()) == from && field.size() > from.size() &&
         field[from.size()] == '[')) {
      return absl::Status(
          status.code(),
          absl::StrCat(std::string(to), std::string(field.substr(from.size())),
                       std::string(message.substr(colon))));
    }
  }
  return status;
}

}  // namespace

absl::StatusOr<EngineRequest> ValidateRequest(const RequestFields& fields,
                                              const FieldNames& names,
                                              const model::ModelConfig& model,
                                              const model::Tokenizer& tokenizer,
                                              int max_model_len) {
  auto validated =
      ValidateGenerateRequest(ToProto(fields), model, tokenizer, max_model_len);
  if (!validated.ok()) return Rename(validated.status(), names);
  return validated;
}

}  // namespace hydra::server
