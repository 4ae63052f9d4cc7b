#include "bench/loadgen/http_stream_call.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"

namespace hydra::loadgen {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

constexpr size_t kMaxErrorBody = 64 << 10;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

std::unique_ptr<ConnectionPool::Stream> ConnectionPool::Take(bool* reused) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Stream> s = std::move(idle_.back());
      idle_.pop_back();
      *reused = true;
      return s;
    }
  }
  *reused = false;
  return New();
}

std::unique_ptr<ConnectionPool::Stream> ConnectionPool::New() {
  return std::make_unique<Stream>(net::make_strand(ioc_));
}

void ConnectionPool::Give(std::unique_ptr<Stream> stream) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(stream));
}

void HttpStreamCall::Start(const Target& target, const StreamRequest& request,
                           Clock::time_point run_start, int64_t index,
                           StreamDone done) {
  auto call =
      std::make_shared<HttpStreamCall>(target, request, index, std::move(done));
  call->start_ = Clock::now();
  call->deadline_ = call->start_ + request.timeout;
  call->record_.start_s = Ms(call->start_ - run_start) / 1e3;
  call->recorder_.emplace(call->start_);
  call->stream_ = target.pool->Take(&call->reused_);
  // Every step on the connection's strand, this first one too.
  net::post(call->stream_->get_executor(), [call] { call->Begin(); });
}

HttpStreamCall::HttpStreamCall(const Target& target,
                               const StreamRequest& request, int64_t index,
                               StreamDone done)
    : target_(target), done_(std::move(done)), timeout_(request.timeout) {
  record_.index = index;
  request_ = {http::verb::post, "/v1/completions", 11};
  request_.set(http::field::host, target.address.HostHeader());
  request_.set(http::field::user_agent, "hydra-bench");
  request_.set(http::field::content_type, "application/json");
  request_.set(http::field::accept, "text/event-stream");
  if (!target.api_key.empty()) {
    request_.set(http::field::authorization, "Bearer " + target.api_key);
  }
  request_.keep_alive(true);
  request_.body() = CompletionRequestJson(target.model, request, true);
  request_.prepare_payload();
}

void HttpStreamCall::Begin() {
  if (reused_) return Write();
  Connect();
}

void HttpStreamCall::Connect() {
  stream_->expires_at(deadline_);
  stream_->async_connect(
      target_.pool->endpoints(),
      [self = shared_from_this()](beast::error_code ec, const auto&) {
        self->OnConnect(ec);
      });
}

void HttpStreamCall::OnConnect(beast::error_code ec) {
  if (ec) return OnError(ec, "connect");
  Write();
}

void HttpStreamCall::Write() {
  stream_->expires_at(deadline_);
  http::async_write(
      *stream_, request_,
      beast::bind_front_handler(&HttpStreamCall::OnWrite, shared_from_this()));
}

void HttpStreamCall::OnWrite(beast::error_code ec, size_t) {
  if (ec) return OnError(ec, "send");
  parser_.emplace();
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  Read();
}

void HttpStreamCall::Read() {
  parser_->get().body().data = body_;
  parser_->get().body().size = sizeof(body_);
  stream_->expires_at(deadline_);
  http::async_read_some(
      *stream_, buffer_, *parser_,
      beast::bind_front_handler(&HttpStreamCall::OnRead, shared_from_this()));
}

void HttpStreamCall::OnRead(beast::error_code ec, size_t) {
  const Clock::time_point now = Clock::now();
  if (ec == http::error::need_buffer) ec = {};
  if (ec) return OnError(ec, "receive");
  got_bytes_ = true;
  const size_t n = sizeof(body_) - parser_->get().body().size;
  if (n > 0 && parser_->is_header_done()) {
    if (parser_->get().result_int() == 200) {
      sse_.Feed(absl::string_view(body_, n),
                [&](absl::string_view data) { recorder_->OnEvent(data, now); });
    } else if (error_body_.size() < kMaxErrorBody) {
      error_body_.append(body_, n);
    }
  }
  if (parser_->is_done()) return Complete();
  Read();
}

void HttpStreamCall::OnError(beast::error_code ec, const char* during) {
  // A connection the server closed while it sat idle fails at once: try
  // again, once, on a new one.
  if (reused_ && !got_bytes_ && !retried_ && ec != beast::error::timeout) {
    retried_ = true;
    reused_ = false;
    stream_ = target_.pool->New();
    return Connect();
  }
  beast::error_code ignored;
  stream_->socket().close(ignored);
  if (ec == beast::error::timeout) {
    recorder_->Fail(absl::DeadlineExceededError(
        absl::StrCat("no complete response within ",
                     absl::FormatDuration(absl::FromChrono(timeout_)))));
  } else {
    recorder_->Fail(absl::UnavailableError(absl::StrCat(
        during, " ", target_.address.HostHeader(), ": ", ec.message())));
  }
  const Clock::time_point end = Clock::now();
  recorder_->Finish(end, start_, record_);
  done_(std::move(record_));
}

void HttpStreamCall::Complete() {
  const Clock::time_point end = Clock::now();
  const int status = parser_->get().result_int();
  if (status != 200) {
    std::string message = ErrorMessageOf(error_body_);
    if (message.empty()) message = absl::StrCat("HTTP ", status);
    recorder_->Fail(absl::Status(FromHttpStatus(status), message));
  }
  if (parser_->keep_alive()) {
    target_.pool->Give(std::move(stream_));
  } else {
    beast::error_code ignored;
    stream_->socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  }
  recorder_->Finish(end, start_, record_);
  done_(std::move(record_));
}

}  // namespace hydra::loadgen
