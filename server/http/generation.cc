#include "server/http/generation.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/openai_response.h"
#include "server/http/sse.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;
using engine::FinishReason;

// The time of a request's previous tokens, for the metrics' inter-token
// latency. Engine thread only.
class OutputClock {
 public:
  explicit OutputClock(const OutputObserver& observer) : observer_(observer) {}
  void Observe(const engine::EngineOutput& out) {
    if (observer_) observer_(out, previous_);
    if (!out.token_ids.empty()) previous_ = out.time;
  }

 private:
  OutputObserver observer_;
  absl::Time previous_ = absl::InfinitePast();
};

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  Generation(engine::Engine* engine, GenerationSpec spec,
             std::shared_ptr<Responder> responder, int last_prompt_token)
      : engine_(engine),
        spec_(std::move(spec)),
        responder_(std::move(responder)),
        id_(NewResponseId(spec_.chat ? "chatcmpl-" : "cmpl-")),
        created_(UnixSeconds()) {
    choices_.reserve(spec_.n);
    for (int i = 0; i < spec_.n; ++i) {
      choices_.emplace_back(engine_->tokenizer(), last_prompt_token);
    }
  }

  absl::Status Start(const engine::EngineRequest& request,
                     const OutputObserver& observer) {
    std::shared_ptr<Generation> self = shared_from_this();
    for (int i = 0; i < spec_.n; ++i) {
      engine::EngineRequest r = request;
      // With a seed, each choice draws from its own: n equal choices would
      // be of no use.
      if (r.seed_set) r.sampling.seed += static_cast<uint64_t>(i);
      auto clock = std::make_shared<OutputClock>(observer);
      auto id = engine_->Submit(
          std::move(r), [self, i, clock](engine::EngineOutput out) {
            clock->Observe(out);
            self->responder_->Post([self, i, out = std::move(out)]() mutable {
              self->OnOutput(i, std::move(out));
            });
          });
      if (!id.ok()) {
        CancelAll();
        complete_ = true;
        const ApiError e = FromStatus(id.status());
        responder_->Respond(e.status, "application/json", ErrorBody(e));
        return id.status();
      }
      choices_[i].engine_id = *id;
    }
    responder_->OnAbort([self] {
      self->complete_ = true;
      self->CancelAll();
    });
    if (!spec_.stream) return absl::OkStatus();
    responder_->StartStream(200, kSseContentType,
                            {{"Cache-Control", "no-cache"}});
    if (spec_.chat) {
      for (int i = 0; i < spec_.n; ++i) {
        Json delta = {{"role", "assistant"}, {"content", ""}};
        responder_->Write(SseEvent(Chunk(i, std::move(delta), Json(), "")));
      }
    }
    return absl::OkStatus();
  }

 private:
  struct Choice {
    Choice(const model::Tokenizer& tokenizer, int last_prompt_token)
        : logprob_builder(tokenizer, last_prompt_token) {}
    uint64_t engine_id = 0;
    bool done = false;
    std::string text;
    Json logprobs;  // null, or the accumulated logprobs (not streamed)
    LogprobsBuilder logprob_builder;
    FinishReason finish_reason = FinishReason::kNone;
    engine::Usage usage;
  };

  void CancelAll() {
    for (Choice& c : choices_) {
      if (c.engine_id != 0 && !c.done) engine_->Cancel(c.engine_id);
    }
  }

  void OnOutput(int i, engine::EngineOutput out) {
    Choice& c = choices_[i];
    if (complete_ || c.done) return;
    if (out.finished && out.finish_reason != FinishReason::kStop &&
        out.finish_reason != FinishReason::kLength) {
      c.done = true;
      Fail(out);
      return;
    }
    c.text += out.text;
    Json logprobs;
    if (spec_.logprobs) {
      if (spec_.chat) {
        c.logprob_builder.AppendChat(out, logprobs);
      } else {
        c.logprob_builder.AppendCompletion(out, logprobs);
      }
    }
    if (out.finished) {
      c.done = true;
      c.finish_reason = out.finish_reason;
      c.usage = out.usage;
    }
    if (spec_.stream) {
      const std::string_view finish =
          out.finished ? FinishReasonString(out.finish_reason) : "";
      if (!out.text.empty() || !out.logprobs.empty() || out.finished) {
        Json delta;
        if (spec_.chat) {
          delta = Json::object();
          if (!out.text.empty()) delta["content"] = out.text;
          if (spec_.logprobs) logprobs = Json{{"content", logprobs}};
        } else {
          delta = out.text;
        }
        responder_->Write(
            SseEvent(Chunk(i, std::move(delta), std::move(logprobs), finish)));
      }
    } else if (spec_.logprobs) {
      Merge(c.logprobs, logprobs);
    }
    if (out.finished && ++finished_ == spec_.n) Complete();
  }

  // Appends the arrays of `part` to those of `into`.
  static void Merge(Json& into, Json& part) {
    if (into.is_null()) {
      into = std::move(part);
      return;
    }
    if (into.is_array()) {
      for (auto& e : part) into.push_back(std::move(e));
      return;
    }
    for (auto& [key, values] : part.items()) {
      for (auto& e : values) into[key].push_back(std::move(e));
    }
  }

  // One streamed chunk of choice i. `delta` is the text (completions) or
  // the delta object (chat).
  Json Chunk(int i, Json delta, Json logprobs, std::string_view finish) const {
    Json choice;
    choice["index"] = i;
    choice[spec_.chat ? "delta" : "text"] = std::move(delta);
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] =
        finish.empty() ? Json() : Json(std::string(finish));
    Json chunk =
        Header(spec_.chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = Json::array({std::move(choice)});
    if (spec_.include_usage) chunk["usage"] = nullptr;
    return chunk;
  }

  Json Header(std::string_view object) const {
    Json j;
    j["id"] = id_;
    j["object"] = object;
    j["created"] = created_;
    j["model"] = spec_.model_name;
    return j;
  }

  Json Usage() const {
    int completion = 0;
    for (const Choice& c : choices_) completion += c.usage.completion_tokens;
    return UsageJson(choices_[0].usage.prompt_tokens, completion,
                     choices_[0].usage.cached_prompt_tokens);
  }

  void Complete() {
    complete_ = true;
    if (spec_.stream) {
      if (spec_.include_usage) {
        Json chunk =
            Header(spec_.chat ? "chat.completion.chunk" : "text_completion");
        chunk["choices"] = Json::array();
        chunk["usage"] = Usage();
        responder_->Write(SseEvent(chunk));
      }
      responder_->Write(SseDone());
      responder_->End();
      return;
    }
    Json body = Header(spec_.chat ? "chat.completion" : "text_completion");
    body["choices"] = Json::array();
    for (int i = 0; i < spec_.n; ++i) {
      Choice& c = choices_[i];
      Json choice;
      choice["index"] = i;
      if (spec_.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        choice["logprobs"] =
            spec_.logprobs
                ? Json{{"content",
                        c.logprobs.is_null() ? Json::array() : c.logprobs}}
                : Json();
      } else {
        choice["text"] = c.text;
        choice["logprobs"] = c.logprobs;
      }
      choice["finish_reason"] =
          std::string(FinishReasonString(c.finish_reason));
      body["choices"].push_back(std::move(choice));
    }
    body["usage"] = Usage();
    responder_->Respond(200, "application/json", Dump(body));
  }

  // A choice ended without a result: the step failed, or the server
  // cancelled it (shutting down).
  void Fail(const engine::EngineOutput& out) {
    complete_ = true;
    CancelAll();
    ApiError e;
    if (out.finish_reason == FinishReason::kError) {
      e = FromStatus(
          absl::Status(out.error_code == absl::StatusCode::kUnavailable
                           ? absl::StatusCode::kUnavailable
                           : absl::StatusCode::kInternal,
                       absl::StrCat("step failed: ", out.error)));
    } else {
      e = FromStatus(absl::UnavailableError(
          absl::StrCat("the request was stopped (",
                       std::string(engine::FinishReasonName(out.finish_reason)),
                       "): the server is shutting down")));
    }
    if (spec_.stream) {
      responder_->Write(SseEvent(Json::parse(ErrorBody(e))));
      responder_->Write(SseDone());
      responder_->End();
    } else {
      responder_->Respond(e.status, "application/json", ErrorBody(e));
    }
  }

  engine::Engine* engine_;
  const GenerationSpec spec_;
  std::shared_ptr<Responder> responder_;
  const std::string id_;
  const int64_t created_;
  std::vector<Choice> choices_;
  int finished_ = 0;
  bool complete_ = false;  // the response is out (or abandoned)
};

}  // namespace

absl::Status StartGeneration(engine::Engine* engine,
                             const engine::EngineRequest& request,
                             GenerationSpec spec,
                             std::shared_ptr<Responder> responder,
                             const OutputObserver& observer) {
  const int last_prompt_token =
      request.prompt_ids.empty() ? -1 : request.prompt_ids.back();
  auto generation = std::make_shared<Generation>(
      engine, std::move(spec), std::move(responder), last_prompt_token);
  return generation->Start(request, observer);
}

}  // namespace hydra::server::http
