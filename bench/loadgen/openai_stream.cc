#include "bench/loadgen/openai_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace hydra::loadgen {
namespace {

using nlohmann::json;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int IntOr(const json& j, const char* key, int fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

std::string StringOr(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

CompletionUsage UsageOf(const json& u) {
  CompletionUsage usage;
  usage.prompt_tokens = IntOr(u, "prompt_tokens", 0);
  usage.completion_tokens = IntOr(u, "completion_tokens", 0);
  if (const auto d = u.find("prompt_tokens_details");
      d != u.end() && d->is_object()) {
    usage.cached_tokens = IntOr(*d, "cached_tokens", 0);
  }
  return usage;
}

// {"error": {"message", "type", "code"}}: code an HTTP status where given.
absl::Status ErrorOf(const json& e) {
  if (!e.is_object()) return absl::UnknownError(e.dump());
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (const int http = IntOr(e, "code", 0); http > 0) {
    code = FromHttpStatus(http);
  } else if (StringOr(e, "type") == "invalid_request_error") {
    code = absl::StatusCode::kInvalidArgument;
  }
  std::string message = StringOr(e, "message");
  if (message.empty()) message = e.dump();
  return absl::Status(code, message);
}

}  // namespace

std::string CompletionRequestJson(const std::string& model,
                                  const StreamRequest& request, bool stream) {
  json body = {{"model", model},
               {"prompt", request.prompt},
               {"max_tokens", request.max_tokens},
               {"temperature", request.temperature}};
  if (request.ignore_eos) body["ignore_eos"] = true;
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body.dump();
}

absl::StatusCode FromHttpStatus(int status) {
  if (status >= 200 && status < 300) return absl::StatusCode::kOk;
  switch (status) {
    case 400:
    case 413:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
    case 500:
      return absl::StatusCode::kInternal;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 502:
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string ErrorMessageOf(absl::string_view body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (const auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object()) {
        if (std::string m = StringOr(*e, "message"); !m.empty()) return m;
      }
    }
    if (std::string m = StringOr(j, "message"); !m.empty()) return m;
  }
  return std::string(body);
}

absl::StatusOr<CompletionChunk> ParseCompletionChunk(absl::string_view data) {
  CompletionChunk chunk;
  if (data == "[DONE]") {
    chunk.done = true;
    return chunk;
  }
  const json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::DataLossError(
        absl::StrCat("not a completion chunk: ", data.substr(0, 200)));
  }
  if (const auto e = j.find("error"); e != j.end() && !e->is_null()) {
    chunk.error = ErrorOf(*e);
    return chunk;
  }
  if (const auto c = j.find("choices");
      c != j.end() && c->is_array() && !c->empty() && c->front().is_object()) {
    const json& choice = c->front();
    chunk.text = StringOr(choice, "text");
    chunk.finish_reason = StringOr(choice, "finish_reason");
  }
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    chunk.usage = UsageOf(*u);
  }
  return chunk;
}

void CompletionRecorder::OnEvent(absl::string_view data, Clock::time_point at) {
  if (ended_) return;
  absl::StatusOr<CompletionChunk> chunk = ParseCompletionChunk(data);
  if (!chunk.ok()) {
    Fail(chunk.status());
    ended_ = true;
    return;
  }
  if (chunk->done) {
    said_done_ = ended_ = true;
    return;
  }
  if (chunk->error) {
    Fail(*chunk->error);
    ended_ = true;
    return;
  }
  int tokens = chunk->text.empty() ? 0 : 1;
  if (chunk->usage) {
    const int grew = chunk->usage->completion_tokens - last_completion_tokens_;
    last_completion_tokens_ = chunk->usage->completion_tokens;
    if (tokens > 0 && grew > 0) tokens = grew;
    usage_ = chunk->usage;
  }
  timeline_.Add(at, tokens);
  if (!chunk->finish_reason.empty()) finish_reason_ = chunk->finish_reason;
}

void CompletionRecorder::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void CompletionRecorder::Finish(Clock::time_point end, Clock::time_point start,
                                RequestRecord& record) {
  if (status_.ok() && !said_done_ && finish_reason_.empty()) {
    status_ = absl::UnavailableError(
        "the stream ended before [DONE] or a finish_reason");
  }
  if (usage_) {
    timeline_.SetTotal(usage_->completion_tokens);
    record.input_tokens = usage_->prompt_tokens;
    record.cached_input_tokens = usage_->cached_tokens;
  }
  timeline_.Fill(record);
  record.e2e_ms = Ms(end - start);
  record.code = status_.code();
  record.finish_reason = status_.ok() ? finish_reason_ : "";
  record.error = status_.ok() ? "" : std::string(status_.message());
}

}  // namespace hydra::loadgen
