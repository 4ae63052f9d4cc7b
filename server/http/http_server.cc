#include "server/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "server/http/errors.h"

namespace hydra::server::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

// While a response is pending, bytes of pipelined requests are read ahead
// (so that a closed socket is still noticed) up to this much.
constexpr size_t kMaxReadAhead = size_t{1} << 20;
constexpr size_t kReadChunk = 16 << 10;
// After the last response of a connection that closes: how long to drain
// what the client still sends, so that closing does not reset the
// connection before the client has read the response.
constexpr auto kLingerTime = std::chrono::seconds(2);

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// The io_context, shared with every Exchange: an engine callback may hold
// an Exchange (and its strand) after the server is gone, so the context
// lives until the last of them. `open` lets the engine thread post into it
// only while the io threads run.
struct Runtime {
  asio::io_context ioc;
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
};

class Exchange;

// What an Exchange asks of its connection; all calls on the strand.
class ConnectionBase : public std::enable_shared_from_this<ConnectionBase> {
 public:
  virtual ~ConnectionBase() = default;
  virtual void SendWhole(Exchange* ex, int status, std::string content_type,
                         std::string body, Headers extra) = 0;
  virtual void SendHead(Exchange* ex, int status, std::string content_type,
                        Headers extra) = 0;
  virtual void SendChunk(Exchange* ex, std::string data) = 0;
  virtual void SendEnd(Exchange* ex) = 0;
  virtual bool closed() const = 0;
  virtual void Close() = 0;
  virtual const Strand& strand() const = 0;
};

class Exchange final : public Responder,
                       public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Runtime> runtime,
           std::weak_ptr<ConnectionBase> connection, Strand strand)
      : runtime_(std::move(runtime)),
        connection_(std::move(connection)),
        strand_(std::move(strand)) {}

  void Respond(int status, std::string content_type, std::string body,
               Headers extra) override {
    Run([=, this, body = std::move(body),
         extra = std::move(extra)](ConnectionBase& c) mutable {
      c.SendWhole(this, status, std::move(content_type), std::move(body),
                  std::move(extra));
    });
  }
  void StartStream(int status, std::string content_type,
                   Headers extra) override {
    Run([=, this, extra = std::move(extra)](ConnectionBase& c) mutable {
      c.SendHead(this, status, std::move(content_type), std::move(extra));
    });
  }
  void Write(std::string data) override {
    Run([this, data = std::move(data)](ConnectionBase& c) mutable {
      c.SendChunk(this, std::move(data));
    });
  }
  void End() override {
    Run([this](ConnectionBase& c) { c.SendEnd(this); });
  }
  void Post(std::function<void()> fn) override {
    Run([fn = std::move(fn)](ConnectionBase&) { fn(); });
  }
  void OnAbort(std::function<void()> fn) override {
    Dispatch([this, fn = std::move(fn)]() mutable {
      if (aborted_) {
        fn();
      } else if (!ended_) {
        abort_fn_ = std::move(fn);
      }
    });
  }

  // Strand only.
  bool done() const { return ended_ || aborted_; }
  void MarkEnded() {
    ended_ = true;
    abort_fn_ = nullptr;
  }
  void Abort() {
    if (done()) return;
    aborted_ = true;
    if (auto fn = std::exchange(abort_fn_, nullptr)) fn();
  }
  bool streaming = false;
  bool head_sent = false;

 private:
  // Runs `fn` on the strand with the live connection; the Exchange is kept
  // alive until then.
  template <typename Fn>
  void Run(Fn fn) {
    Dispatch([this, fn = std::move(fn)]() mutable {
      std::shared_ptr<ConnectionBase> c = connection_.lock();
      if (c != nullptr && !c->closed()) fn(*c);
    });
  }
  // On the strand: at once. Elsewhere (the engine thread): posted, while
  // the io_context still takes work; the Exchange lives until fn has run.
  template <typename Fn>
  void Dispatch(Fn fn) {
    if (strand_.running_in_this_thread()) {
      fn();
      return;
    }
    absl::MutexLock lock(&runtime_->mu);
    if (!runtime_->open) return;
    asio::post(strand_, [self = shared_from_this(),
                         fn = std::move(fn)]() mutable { fn(); });
  }

  std::shared_ptr<Runtime> runtime_;  // first: destroyed last
  std::weak_ptr<ConnectionBase> connection_;
  Strand strand_;
  bool ended_ = false;
  bool aborted_ = false;
  std::function<void()> abort_fn_;
};

std::string StatusLine(int status) {
  const auto reason =
      bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return absl::StrCat("HTTP/1.1 ", status, " ",
                      std::string(reason.data(), reason.size()), "\r\n");
}

std::string Hex(size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[n % 16]);
    n /= 16;
  } while (n > 0);
  return out;
}

template <typename Stream>
class Connection final : public ConnectionBase {
 public:
  static constexpr bool kTls =
      std::is_same_v<Stream, asio::ssl::stream<tcp::socket>>;

  Connection(std::shared_ptr<Runtime> runtime, Stream stream, Strand strand,
             const HttpServerOptions& options, const Handler& handler)
      : runtime_(std::move(runtime)),
        stream_(std::move(stream)),
        strand_(std::move(strand)),
        options_(options),
        handler_(handler),
        read_timer_(Socket().get_executor()),
        write_timer_(Socket().get_executor()) {}

  void Begin() {
    ArmReadTimer(options_.header_timeout);
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = Self()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->DoRead();
                              });
    } else {
      DoRead();
    }
  }

  bool closed() const override { return closed_; }
  const Strand& strand() const override { return strand_; }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    if (current_ != nullptr) {
      std::shared_ptr<Exchange> ex = std::move(current_);
      ex->Abort();
    }
    read_timer_.cancel();
    write_timer_.cancel();
    beast::error_code ec;
    Socket().shutdown(tcp::socket::shutdown_both, ec);
    Socket().close(ec);
  }

  void SendWhole(Exchange* ex, int status, std::string content_type,
                 std::string body, Headers extra) override {
    if (!IsCurrent(ex) || ex->head_sent) return;
    ex->head_sent = true;
    std::string out = Head(status, content_type, extra);
    absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n\r\n");
    out += body;
    Queue(std::move(out));
    FinishExchange();
  }

  void SendHead(Exchange* ex, int status, std::string content_type,
                Headers extra) override {
    if (!IsCurrent(ex) || ex->head_sent) return;
    ex->head_sent = true;
    ex->streaming = true;
    // Without chunks (HTTP/1.0), the end of the body is the end of the
    // connection.
    if (!http11_) keep_alive_ = false;
    std::string out = Head(status, content_type, extra);
    if (http11_) out += "Transfer-Encoding: chunked\r\n";
    out += "\r\n";
    Queue(std::move(out));
  }

  void SendChunk(Exchange* ex, std::string data) override {
    if (!IsCurrent(ex) || !ex->streaming || data.empty()) return;
    if (http11_) {
      std::string chunk = Hex(data.size());
      chunk.reserve(chunk.size() + data.size() + 4);
      chunk += "\r\n";
      chunk += data;
      chunk += "\r\n";
      Queue(std::move(chunk));
    } else {
      Queue(std::move(data));
    }
    if (queued_bytes_ > options_.max_queued_bytes) {
      Close();  // aborts the exchange: the engine request is cancelled
    }
  }

  void SendEnd(Exchange* ex) override {
    if (!IsCurrent(ex) || !ex->streaming) return;
    if (http11_) Queue("0\r\n\r\n");
    FinishExchange();
  }

 private:
  std::shared_ptr<Connection> Self() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }
  tcp::socket& Socket() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  bool IsCurrent(Exchange* ex) const {
    return !closed_ && current_.get() == ex && !ex->done();
  }

  std::string Head(int status, const std::string& content_type,
                   const Headers& extra) {
    std::string out = StatusLine(status);
    if (!content_type.empty()) {
      absl::StrAppend(&out, "Content-Type: ", content_type, "\r\n");
    }
    for (const auto& [name, value] : extra) {
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    }
    if (!keep_alive_) out += "Connection: close\r\n";
    return out;
  }

  // --- reading -------------------------------------------------------------

  void DoRead() {
    if (reading_ || closed_) return;
    if (current_ != nullptr && buffer_.size() >= kMaxReadAhead) return;
    reading_ = true;
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        asio::bind_executor(strand_,
                            [self = Self()](beast::error_code ec, size_t n) {
                              self->OnRead(ec, n);
                            }));
  }

  void OnRead(beast::error_code ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {  // the client went away (or closed its side)
      Close();
      return;
    }
    buffer_.commit(n);
    if (lingering_) {
      buffer_.consume(buffer_.size());
    } else if (current_ == nullptr) {
      Parse();
    }
    DoRead();
  }

  void Parse() {
    while (!closed_ && !lingering_ && current_ == nullptr &&
           buffer_.size() > 0) {
      if (!parser_) {
        parser_.emplace();
        parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
        parser_->body_limit(options_.max_body_bytes);
        parser_->eager(true);
        state_ = ReadState::kHeader;
      }
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (state_ == ReadState::kHeader && parser_->is_header_done()) {
        state_ = ReadState::kBody;
        ArmReadTimer(options_.body_timeout);
        const auto& header = parser_->get();
        if (!parser_->is_done() &&
            beast::iequals(header[bhttp::field::expect], "100-continue")) {
          Queue("HTTP/1.1 100 Continue\r\n\r\n");
        }
      }
      if (ec == bhttp::error::need_more) {
        if (used == 0) return;  // wait for more bytes
        continue;
      }
      if (ec) {
        RefuseMalformed(ec);
        return;
      }
      if (parser_->is_done()) {
        Dispatch();
        return;
      }
    }
  }

  void RefuseMalformed(beast::error_code ec) {
    ApiError e;
    if (ec == bhttp::error::body_limit) {
      e = ApiError{413,
                   absl::StrCat("the request body is larger than the limit of ",
                                options_.max_body_bytes, " bytes"),
                   "invalid_request_error", "", ""};
    } else if (ec == bhttp::error::header_limit) {
      e = ApiError{431,
                   absl::StrCat("the request header is larger than the limit "
                                "of ",
                                options_.max_header_bytes, " bytes"),
                   "invalid_request_error", "", ""};
    } else {
      e = ApiError{400, absl::StrCat("malformed HTTP request: ", ec.message()),
                   "invalid_request_error", "", ""};
    }
    RefuseAndClose(e);
  }

  // Answers outside any exchange (the request never reached the handler)
  // and closes the connection after the answer.
  void RefuseAndClose(const ApiError& e) {
    if (options_.on_rejected) options_.on_rejected(StatusCodeOf(e));
    parser_.reset();
    keep_alive_ = false;
    std::string body = ErrorBody(e);
    std::string out = Head(e.status, "application/json", {});
    absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n\r\n", body);
    Queue(std::move(out));
    StartLinger();
  }

  void Dispatch() {
    bhttp::request<bhttp::string_body> message = parser_->release();
    parser_.reset();
    state_ = ReadState::kIdle;
    DisarmReadTimer();
    keep_alive_ = message.keep_alive();
    http11_ = message.version() >= 11;

    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.path = request.target.substr(0, request.target.find('?'));
    for (const auto& field : message) {
      request.headers.emplace_back(
          absl::AsciiStrToLower(std::string(field.name_string())),
          std::string(field.value()));
    }
    request.body = std::move(message.body());

    auto ex = std::make_shared<Exchange>(runtime_, weak_from_this(), strand_);
    current_ = ex;
    try {
      handler_(std::move(request), ex);
    } catch (const std::exception& err) {
      ex->Respond(
          500, "application/json",
          ErrorBody(ApiError{500, absl::StrCat("internal error: ", err.what()),
                             "server_error", "", ""}),
          {});
    }
  }

  // The current exchange's response is complete (queued).
  void FinishExchange() {
    current_->MarkEnded();
    current_.reset();
    if (!keep_alive_) {
      StartLinger();
      return;
    }
    ArmReadTimer(options_.header_timeout);
    // A pipelined request may be waiting; posted, so that handlers that
    // answer at once do not recurse here.
    asio::post(strand_, [self = Self()] {
      self->Parse();
      self->DoRead();
    });
  }

  // --- timers --------------------------------------------------------------

  // Timers carry a generation, so that a wait that completed just before
  // being re-armed is not taken for the new one.
  void ArmReadTimer(std::chrono::steady_clock::duration d) {
    const uint64_t generation = ++read_generation_;
    read_timer_.expires_after(d);
    read_timer_.async_wait(asio::bind_executor(
        strand_, [self = Self(), generation](beast::error_code ec) {
          if (!ec && generation == self->read_generation_) {
            self->OnReadTimeout();
          }
        }));
  }
  void ArmReadTimer(absl::Duration d) { ArmReadTimer(ToChrono(d)); }
  void DisarmReadTimer() {
    ++read_generation_;
    read_timer_.cancel();
  }

  void OnReadTimeout() {
    if (closed_) return;
    if (lingering_) {
      Close();
      return;
    }
    if (current_ != nullptr) return;
    // An idle connection (nothing of a next request arrived) is closed
    // quietly; a partial request is answered.
    if (!parser_ && buffer_.size() == 0) {
      if (writing_ || !out_.empty()) {
        // Still sending the last response (its writes have their own
        // timeout): the idle time starts when it is out.
        ArmReadTimer(options_.header_timeout);
        return;
      }
      Close();
      return;
    }
    const bool in_body = state_ == ReadState::kBody;
    RefuseAndClose(ApiError{
        408,
        absl::StrCat(in_body ? "the request body" : "the request header",
                     " did not arrive within ",
                     absl::FormatDuration(in_body ? options_.body_timeout
                                                  : options_.header_timeout)),
        "invalid_request_error", "", ""});
  }

  // --- writing -------------------------------------------------------------

  void Queue(std::string data) {
    if (closed_ || data.empty()) return;
    queued_bytes_ += data.size();
    out_.push_back(std::move(data));
    DoWrite();
  }

  void DoWrite() {
    if (writing_ || closed_) return;
    if (out_.empty()) {
      if (lingering_ && !shut_down_) {
        shut_down_ = true;
        beast::error_code ec;
        Socket().shutdown(tcp::socket::shutdown_send, ec);
        ArmReadTimer(kLingerTime);
      }
      return;
    }
    writing_ = true;
    in_flight_.clear();
    while (!out_.empty()) {
      in_flight_.push_back(std::move(out_.front()));
      out_.pop_front();
    }
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(in_flight_.size());
    for (const std::string& s : in_flight_) buffers.push_back(asio::buffer(s));
    const uint64_t generation = ++write_generation_;
    write_timer_.expires_after(ToChrono(options_.write_timeout));
    write_timer_.async_wait(asio::bind_executor(
        strand_, [self = Self(), generation](beast::error_code ec) {
          // The client does not read.
          if (!ec && generation == self->write_generation_) self->Close();
        }));
    asio::async_write(
        stream_, buffers,
        asio::bind_executor(strand_,
                            [self = Self()](beast::error_code ec, size_t n) {
                              self->OnWrite(ec, n);
                            }));
  }

  void OnWrite(beast::error_code ec, size_t n) {
    writing_ = false;
    ++write_generation_;
    write_timer_.cancel();
    if (closed_) return;
    if (ec) {
      Close();
      return;
    }
    queued_bytes_ -= std::min(queued_bytes_, n);
    in_flight_.clear();
    DoWrite();
  }

  // No more requests on this connection: send what is queued, then shut
  // down our side and drain the client's until it closes (or kLingerTime).
  void StartLinger() {
    lingering_ = true;
    buffer_.consume(buffer_.size());
    DisarmReadTimer();
    DoWrite();
    DoRead();
  }

  enum class ReadState { kIdle, kHeader, kBody };

  std::shared_ptr<Runtime> runtime_;
  Stream stream_;
  Strand strand_;
  const HttpServerOptions& options_;
  const Handler& handler_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  uint64_t read_generation_ = 0;
  uint64_t write_generation_ = 0;

  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  ReadState state_ = ReadState::kIdle;
  bool reading_ = false;
  std::shared_ptr<Exchange> current_;
  bool keep_alive_ = true;
  bool http11_ = true;

  std::deque<std::string> out_;
  std::vector<std::string> in_flight_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool lingering_ = false;
  bool shut_down_ = false;
  bool closed_ = false;
};

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        runtime_(std::make_shared<Runtime>()),
        ioc_(runtime_->ioc),
        work_(ioc_.get_executor()),
        acceptor_(asio::make_strand(ioc_)),
        ssl_(asio::ssl::context::tls_server) {}

  ~Impl() {
    Stop();
    {
      absl::MutexLock lock(&runtime_->mu);
      runtime_->open = false;
    }
    // With the listener and every connection closed, the io threads run
    // out of work (the aborted operations complete) and return.
    work_.reset();
    for (std::thread& t : threads_) t.join();
  }

  absl::Status Listen() {
    const bool tls = !options_.tls_cert_pem.empty();
    if (tls) {
      boost::system::error_code ec;
      ssl_.set_options(
          asio::ssl::context::default_workarounds |
              asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
              asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
          ec);
      ssl_.use_certificate_chain(asio::buffer(options_.tls_cert_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("TLS certificate: ", ec.message()));
      }
      ssl_.use_private_key(asio::buffer(options_.tls_key_pem),
                           asio::ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("TLS key: ", ec.message()));
      }
    }
    const std::string where = absl::StrCat(options_.host, ":", options_.port);
    boost::system::error_code ec;
    const asio::ip::address address = asio::ip::make_address(options_.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot listen on ", where, ": ", ec.message()));
    }
    const tcp::endpoint endpoint(address,
                                 static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", where, ": ", ec.message(),
          " (is another process, perhaps another hydra, using --http_port?)"));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    const int n = std::max(1, options_.io_threads);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return absl::OkStatus();
  }

  int port() const { return port_; }

  // Returns once the listener and every connection are closed (their
  // pending responses aborted). Not from an io thread.
  void Stop() {
    if (stopped_.exchange(true) || threads_.empty()) return;
    std::vector<std::shared_ptr<ConnectionBase>> connections;
    {
      absl::MutexLock lock(&mu_);
      for (auto& weak : connections_) {
        if (auto c = weak.lock()) connections.push_back(std::move(c));
      }
      connections_.clear();
    }
    absl::BlockingCounter closed(static_cast<int>(connections.size()) + 1);
    asio::post(acceptor_.get_executor(), [this, &closed] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      closed.DecrementCount();
    });
    for (auto& c : connections) {
      asio::post(c->strand(), [c, &closed] {
        c->Close();
        closed.DecrementCount();
      });
    }
    closed.Wait();
  }

 private:
  void Accept() {
    acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted || stopped_.load()) return;
        Accept();
        return;
      }
      OnAccept(std::move(s));
      Accept();
    });
  }

  void OnAccept(tcp::socket socket) {
    if (stopped_.load()) return;
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    std::shared_ptr<ConnectionBase> base;
    Strand strand = asio::make_strand(ioc_);
    if (!options_.tls_cert_pem.empty()) {
      using S = asio::ssl::stream<tcp::socket>;
      auto c = std::make_shared<Connection<S>>(
          runtime_, S(std::move(socket), ssl_), strand, options_, handler_);
      base = c;
      asio::post(strand, [c] { c->Begin(); });
    } else {
      auto c = std::make_shared<Connection<tcp::socket>>(
          runtime_, std::move(socket), strand, options_, handler_);
      base = c;
      asio::post(strand, [c] { c->Begin(); });
    }
    absl::MutexLock lock(&mu_);
    // Forget connections that are gone, so the list stays short.
    std::erase_if(connections_, [](const std::weak_ptr<ConnectionBase>& w) {
      return w.expired();
    });
    connections_.push_back(base);
  }

  HttpServerOptions options_;
  Handler handler_;
  std::shared_ptr<Runtime> runtime_;
  asio::io_context& ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  tcp::acceptor acceptor_;
  asio::ssl::context ssl_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::vector<std::weak_ptr<ConnectionBase>> connections_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    HttpServerOptions options, Handler handler) {
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace hydra::server::http
