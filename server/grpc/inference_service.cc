#include "server/grpc/inference_service.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/grpc/call_auth.h"
#include "server/grpc/request_fields.h"
#include "server/grpc/wire.h"
#include "server/request_validation.h"

namespace hydra::server::grpc {
namespace {

using engine::FinishReason;

absl::StatusOr<engine::EngineRequest> Validate(
    const v1::GenerateRequest& request, const engine::Engine& engine) {
  return ValidateRequest(ToRequestFields(request), kGrpcFieldNames,
                         engine.model_config(), engine.tokenizer(),
                         engine.config().max_model_len);
}

::grpc::Status ToGrpc(const absl::Status& s) {
  return ::grpc::Status(static_cast<::grpc::StatusCode>(s.code()),
                        std::string(s.message()));
}

v1::FinishReason ToProto(engine::FinishReason reason) {
  switch (reason) {
    case engine::FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case engine::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case engine::FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case engine::FinishReason::kDeadline:
      return v1::FINISH_REASON_DEADLINE;
    default:
      return v1::FINISH_REASON_UNSPECIFIED;
  }
}

// The status a finished request ends its call with.
::grpc::Status FinalStatus(const engine::EngineOutput& out) {
  switch (out.finish_reason) {
    case engine::FinishReason::kCancelled:
      return ::grpc::Status(::grpc::StatusCode::CANCELLED, "cancelled");
    case engine::FinishReason::kDeadline:
      return ::grpc::Status(::grpc::StatusCode::DEADLINE_EXCEEDED,
                            "the request's deadline passed");
    case engine::FinishReason::kError:
      // A failed peer is UNAVAILABLE (retry elsewhere); anything else is a
      // bug of ours.
      return ::grpc::Status(out.error_code == absl::StatusCode::kUnavailable
                                ? ::grpc::StatusCode::UNAVAILABLE
                                : ::grpc::StatusCode::INTERNAL,
                            absl::StrCat("step failed: ", out.error));
    default:
      return ::grpc::Status::OK;
  }
}

template <typename Message>
void FillCommon(const engine::EngineOutput& out, Message* m) {
  m->mutable_token_ids()->Add(out.token_ids.begin(), out.token_ids.end());
  for (const engine::SampledToken& t : out.logprobs) {
    v1::Logprobs* lp = m->add_logprobs();
    lp->set_token_id(t.token_id);
    lp->set_logprob(t.logprob);
    for (const auto& alt : t.top) {
      v1::TokenLogprob* a = lp->add_top();
      a->set_token_id(alt.token_id);
      a->set_logprob(alt.logprob);
    }
  }
  if (out.finished) {
    m->set_finish_reason(ToProto(out.finish_reason));
    m->mutable_usage()->set_prompt_tokens(out.usage.prompt_tokens);
    m->mutable_usage()->set_completion_tokens(out.usage.completion_tokens);
    m->mutable_usage()->set_cached_prompt_tokens(
        out.usage.cached_prompt_tokens);
  }
}

absl::Time Deadline(const ::grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >=
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// Ties an engine request to a call: cancels the request when the call is
// cancelled, whichever of Submit and OnCancel comes first. A call cancelled
// near its deadline ends as kDeadline: the client cancels the call when its
// deadline passes, and that cancellation reaches the server before the
// server's copy of the deadline (the client's timeout counted from when the
// call arrived) has passed, by the call's upload and queueing delay. So a
// cancellation in the last quarter of the timeout counts as the deadline.
class EngineCall {
 public:
  explicit EngineCall(engine::Engine* engine) : engine_(engine) {}
  void SetId(uint64_t id, absl::Time deadline) {
    const absl::Duration margin = std::clamp(
        (deadline - absl::Now()) / 4, absl::Milliseconds(10), absl::Seconds(1));
    deadline_ = deadline - margin;  // published by the store of id_
    id_.store(id);
    if (cancelled_.load()) engine_->Cancel(id, Reason());
  }
  void Cancel() {
    cancelled_.store(true);
    if (const uint64_t id = id_.load(); id != 0) engine_->Cancel(id, Reason());
  }

 private:
  engine::FinishReason Reason() const {
    return absl::Now() >= deadline_ ? engine::FinishReason::kDeadline
                                    : engine::FinishReason::kCancelled;
  }

  engine::Engine* engine_;
  // The deadline less the margin; read once id_ is set.
  absl::Time deadline_ = absl::InfiniteFuture();
  std::atomic<uint64_t> id_{0};
  std::atomic<bool> cancelled_{false};
};

// Hands each output to the metrics observer with the time of the request's
// previous tokens (for inter-token latency). Engine thread only.
class OutputClock {
 public:
  OutputClock() = default;
  explicit OutputClock(OutputObserver observer)
      : observer_(std::move(observer)) {}
  void Observe(const engine::EngineOutput& out) {
    if (observer_) observer_(out, previous_);
    if (!out.token_ids.empty()) previous_ = out.time;
  }

 private:
  OutputObserver observer_;
  absl::Time previous_ = absl::InfinitePast();
};

// Streaming: outputs queue up and are written one at a time, as fast as the
// client reads. State the engine thread touches lives in `Shared`, which
// outlives the reactor (deleted in OnDone).
class StreamReactor final
    : public ::grpc::ServerWriteReactor<::grpc::ByteBuffer> {
 public:
  StreamReactor(engine::Engine* engine, std::string request_id,
                OutputObserver observer)
      : call_(engine), shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    shared_->request_id = std::move(request_id);
    shared_->clock = OutputClock(std::move(observer));
  }

  // Submits the request; a refusal (a full queue) finishes the call and is
  // returned.
  ::grpc::Status Start(engine::Engine* engine, engine::EngineRequest request) {
    const absl::Time deadline = request.deadline;
    std::shared_ptr<Shared> shared = shared_;
    auto id =
        engine->Submit(std::move(request), [shared](engine::EngineOutput out) {
          shared->Deliver(std::move(out));
        });
    if (!id.ok()) {
      {
        absl::MutexLock lock(&shared_->mu);
        shared_->finish_called = true;
      }
      const ::grpc::Status status = ToGrpc(id.status());
      Finish(status);
      return status;
    }
    call_.SetId(*id, deadline);
    return ::grpc::Status::OK;
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // the client is gone
      call_.Cancel();
      bool finish = false;
      {
        absl::MutexLock lock(&shared_->mu);
        shared_->writing = false;
        finish = !std::exchange(shared_->finish_called, true);
      }
      if (finish)
        Finish(::grpc::Status(::grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->writing = false;
    }
    shared_->Pump();
  }
  void OnCancel() override { call_.Cancel(); }
  void OnDone() override {
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Shared {
    absl::Mutex mu;
    StreamReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    std::string request_id;
    OutputClock clock;
    std::deque<::grpc::ByteBuffer> queue ABSL_GUARDED_BY(mu);
    ::grpc::ByteBuffer in_flight ABSL_GUARDED_BY(mu);
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool final_queued ABSL_GUARDED_BY(mu) = false;
    bool finish_called ABSL_GUARDED_BY(mu) = false;
    ::grpc::Status final_status ABSL_GUARDED_BY(mu);

    void Deliver(engine::EngineOutput out) {
      clock.Observe(out);
      v1::GenerateStreamResponse msg;
      msg.set_request_id(request_id);
      msg.set_text(out.text);
      FillCommon(out, &msg);
      {
        absl::MutexLock lock(&mu);
        if (reactor == nullptr) return;
        const bool failed = out.finished && !FinalStatus(out).ok();
        // A call that fails carries its status, not a last message.
        if (!failed) queue.push_back(Serialize(msg));
        if (out.finished) {
          final_queued = true;
          final_status = FinalStatus(out);
        }
      }
      Pump();
    }

    // Starts the next write, or finishes the call once everything is out.
    // gRPC may run reactions inline, so it is called with `mu` released.
    void Pump() {
      StreamReactor* r = nullptr;
      bool write = false;
      ::grpc::Status status;
      {
        absl::MutexLock lock(&mu);
        if (reactor == nullptr || writing || finish_called) return;
        if (!queue.empty()) {
          in_flight = std::move(queue.front());
          queue.pop_front();
          writing = true;
          write = true;
        } else if (final_queued) {
          finish_called = true;
          status = final_status;
        } else {
          return;
        }
        r = reactor;
      }
      if (write) {
        r->StartWrite(
            &in_flight);  // in_flight is not touched until OnWriteDone
      } else {
        r->Finish(status);
      }
    }
  };

  EngineCall call_;
  std::shared_ptr<Shared> shared_;
};

// The bytes a unary call answers with, made from the gathered response.
using Answerer = std::function<::grpc::ByteBuffer(const v1::GenerateResponse&)>;

::grpc::ByteBuffer SerializeGenerateResponse(const v1::GenerateResponse& r) {
  return Serialize(r);
}

// Unary generation: outputs are gathered into the response.
class GenerateReactor final : public ::grpc::ServerUnaryReactor {
 public:
  GenerateReactor(engine::Engine* engine, std::string request_id,
                  ::grpc::ByteBuffer* response_bytes, OutputObserver observer,
                  Answerer answer = SerializeGenerateResponse)
      : call_(engine), shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    shared_->response_bytes = response_bytes;
    shared_->answer = std::move(answer);
    shared_->clock = OutputClock(std::move(observer));
    shared_->response.set_request_id(std::move(request_id));
  }

  // As StreamReactor::Start.
  ::grpc::Status Start(engine::Engine* engine, engine::EngineRequest request) {
    const absl::Time deadline = request.deadline;
    std::shared_ptr<Shared> shared = shared_;
    auto id =
        engine->Submit(std::move(request), [shared](engine::EngineOutput out) {
          shared->Deliver(std::move(out));
        });
    if (!id.ok()) {
      {
        absl::MutexLock lock(&shared_->mu);
        shared_->reactor = nullptr;  // no output will come
      }
      const ::grpc::Status status = ToGrpc(id.status());
      Finish(status);
      return status;
    }
    call_.SetId(*id, deadline);
    return ::grpc::Status::OK;
  }
  void OnCancel() override { call_.Cancel(); }
  void OnDone() override {
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Shared {
    absl::Mutex mu;
    GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    v1::GenerateResponse response ABSL_GUARDED_BY(mu);
    ::grpc::ByteBuffer* response_bytes ABSL_GUARDED_BY(mu) = nullptr;
    Answerer answer;
    OutputClock clock;

    void Deliver(engine::EngineOutput out) {
      clock.Observe(out);
      GenerateReactor* r = nullptr;
      {
        absl::MutexLock lock(&mu);
        if (reactor == nullptr) return;
        response.mutable_text()->append(out.text);
        FillCommon(out, &response);
        if (out.finished) {
          *response_bytes = answer(response);
          r = std::exchange(reactor, nullptr);
        }
      }
      if (r != nullptr) r->Finish(FinalStatus(out));
    }
  };

  EngineCall call_;
  std::shared_ptr<Shared> shared_;
};

::grpc::ServerUnaryReactor* FinishedUnary(
    ::grpc::CallbackServerContext* context, const ::grpc::Status& status) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Serializes `response` into the call's bytes and finishes it OK.
::grpc::ServerUnaryReactor* Answer(::grpc::CallbackServerContext* context,
                                   const google::protobuf::Message& response,
                                   ::grpc::ByteBuffer* response_bytes) {
  *response_bytes = Serialize(response);
  return FinishedUnary(context, ::grpc::Status::OK);
}

}  // namespace

InferenceService::InferenceService(ServiceOptions options)
    : options_(std::move(options)) {}

::grpc::Status InferenceService::Admit(::grpc::CallbackServerContext* context,
                                       engine::Engine** engine) const {
  if (::grpc::Status s = CheckApiKey(*context, options_.api_key); !s.ok()) {
    return s;
  }
  if (draining_.load()) {
    return ::grpc::Status(::grpc::StatusCode::UNAVAILABLE,
                          "the server is shutting down");
  }
  *engine = engine_.load();
  if (*engine == nullptr) {
    return ::grpc::Status(::grpc::StatusCode::UNAVAILABLE,
                          "the model is still loading");
  }
  return ::grpc::Status::OK;
}

::grpc::Status InferenceService::Accept(::grpc::CallbackServerContext* context,
                                        const ::grpc::ByteBuffer& bytes,
                                        google::protobuf::Message* message,
                                        engine::Engine** engine) const {
  if (::grpc::Status s = Admit(context, engine); !s.ok()) return Reject(s);
  if (::grpc::Status s = ParseRequest(bytes, message); !s.ok()) {
    return Reject(s);
  }
  return ::grpc::Status::OK;
}

::grpc::Status InferenceService::Reject(::grpc::Status status) const {
  if (!status.ok() && options_.on_rejected) {
    options_.on_rejected(static_cast<absl::StatusCode>(status.error_code()));
  }
  return status;
}

::grpc::ServerUnaryReactor* InferenceService::Generate(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* bytes,
    ::grpc::ByteBuffer* response) {
  engine::Engine* engine = nullptr;
  v1::GenerateRequest request;
  if (::grpc::Status s = Accept(context, *bytes, &request, &engine); !s.ok())
    return FinishedUnary(context, s);
  auto validated = Validate(request, *engine);
  if (!validated.ok())
    return FinishedUnary(context, Reject(ToGrpc(validated.status())));
  validated->deadline = Deadline(context);
  auto* reactor = new GenerateReactor(engine, request.request_id(), response,
                                      options_.on_output);
  Reject(reactor->Start(engine, std::move(*validated)));
  return reactor;
}

::grpc::ServerWriteReactor<::grpc::ByteBuffer>*
InferenceService::GenerateStream(::grpc::CallbackServerContext* context,
                                 const ::grpc::ByteBuffer* bytes) {
  engine::Engine* engine = nullptr;
  v1::GenerateRequest request;
  absl::StatusOr<engine::EngineRequest> validated = absl::UnavailableError("");
  ::grpc::Status refused = Accept(context, *bytes, &request, &engine);
  if (refused.ok()) {
    validated = Validate(request, *engine);
    if (!validated.ok()) refused = Reject(ToGrpc(validated.status()));
  }
  auto* reactor =
      new StreamReactor(engine, request.request_id(), options_.on_output);
  if (!refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  validated->deadline = Deadline(context);
  Reject(reactor->Start(engine, std::move(*validated)));
  return reactor;
}

::grpc::ServerUnaryReactor* InferenceService::Tokenize(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* bytes,
    ::grpc::ByteBuffer* response_bytes) {
  engine::Engine* engine = nullptr;
  v1::TokenizeRequest request;
  if (::grpc::Status s = Accept(context, *bytes, &request, &engine); !s.ok())
    return FinishedUnary(context, s);
  auto refuse = [&](std::string message) {
    return FinishedUnary(
        context, Reject(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                                       std::move(message))));
  };
  const model::Tokenizer& tokenizer = engine->tokenizer();
  v1::TokenizeResponse response;
  switch (request.input_case()) {
    case v1::TokenizeRequest::kText: {
      if (!IsValidUtf8(request.text()))
        return refuse("text: is not valid UTF-8");
      auto ids = tokenizer.Encode(
          request.text(), request.has_add_bos() ? request.add_bos() : true);
      if (!ids.ok())
        return FinishedUnary(context, Reject(ToGrpc(ids.status())));
      response.mutable_token_ids()->Add(ids->begin(), ids->end());
      break;
    }
    case v1::TokenizeRequest::kIds: {
      const auto& ids = request.ids().ids();
      auto text = tokenizer.Decode(std::vector<int>(ids.begin(), ids.end()));
      if (!text.ok()) {
        return refuse(absl::StrCat("ids: ", text.status().message()));
      }
      response.mutable_token_ids()->Add(ids.begin(), ids.end());
      response.set_text(*text);
      break;
    }
    default:
      return refuse("input: set either text or ids");
  }
  return Answer(context, response, response_bytes);
}

::grpc::ServerUnaryReactor* InferenceService::GetModelInfo(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* bytes,
    ::grpc::ByteBuffer* response_bytes) {
  engine::Engine* engine = nullptr;
  v1::GetModelInfoRequest request;
  if (::grpc::Status s = Accept(context, *bytes, &request, &engine); !s.ok())
    return FinishedUnary(context, s);
  const model::ModelConfig& c = engine->model_config();
  v1::ModelInfo response;
  response.set_model_name(options_.model_name);
  response.set_architecture(c.architecture);
  response.set_vocab_size(c.vocab_size);
  // The server's cap (--max_model_len), not the model's own context: the
  // most prompt + output tokens a request may have.
  response.set_max_context(engine->config().max_model_len);
  response.set_tensor_parallel_size(options_.tensor_parallel_size);
  response.set_block_size(engine->config().block_size);
  response.set_kv_capacity_tokens(int64_t{engine->config().num_blocks} *
                                  engine->config().block_size);
  response.mutable_eos_token_ids()->Add(c.eos_token_ids.begin(),
                                        c.eos_token_ids.end());
  response.set_bos_token_id(c.bos_token_id);
  response.set_weight_dtype(engine->weight_dtype());
  response.set_kv_cache_dtype(engine->kv_cache_dtype());
  response.set_non_finite_weights(engine->non_finite_weights().values);
  return Answer(context, response, response_bytes);
}

// Validated as a generation of its prompt, run as a prefill only.
::grpc::ServerUnaryReactor* InferenceService::WarmPrefix(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* bytes,
    ::grpc::ByteBuffer* response) {
  engine::Engine* engine = nullptr;
  v1::WarmPrefixRequest request;
  if (::grpc::Status s = Accept(context, *bytes, &request, &engine); !s.ok())
    return FinishedUnary(context, s);
  v1::GenerateRequest generate;
  generate.set_request_id(request.request_id());
  if (request.has_prompt()) generate.set_prompt(request.prompt());
  if (request.has_prompt_token_ids()) {
    *generate.mutable_prompt_token_ids() = request.prompt_token_ids();
  }
  generate.set_priority(request.priority());
  generate.set_retention(request.retention());
  auto validated = Validate(generate, *engine);
  if (!validated.ok())
    return FinishedUnary(context, Reject(ToGrpc(validated.status())));
  validated->prefill_only = true;
  validated->deadline = Deadline(context);
  auto answer = [engine](const v1::GenerateResponse& generated) {
    v1::WarmPrefixResponse r;
    r.set_request_id(generated.request_id());
    const int prompt = generated.usage().prompt_tokens();
    r.set_prompt_tokens(prompt);
    r.set_cached_tokens(engine->PrefixCachedTokens(prompt));
    r.set_reused_tokens(generated.usage().cached_prompt_tokens());
    return Serialize(r);
  };
  auto* reactor = new GenerateReactor(engine, request.request_id(), response,
                                      options_.on_output, std::move(answer));
  Reject(reactor->Start(engine, std::move(*validated)));
  return reactor;
}

}  // namespace hydra::server::grpc
