// An event-driven HTTP/1.1 server on Boost.Asio (request parsing by
// Boost.Beast): a fixed pool of io threads, one strand per connection,
// never a thread per connection. It knows nothing of OpenAI: every complete
// request goes to a Handler, which answers through a Responder, at once or
// later from any thread, in one piece or streamed in chunks.
//
// Per connection: keep-alive and pipelining (requests are answered in
// order, one at a time), a deadline for the header and one for the body
// (slow clients are answered 408 and closed), a body size limit (413), a
// deadline for each write, and a bound on the bytes queued for a client
// that reads slowly. A connection that closes, fails a write, overruns its
// queue or times out while a response is pending aborts that response: the
// handler's abort callback runs (it cancels the engine request).
#ifndef HYDRA_SERVER_HTTP_HTTP_SERVER_H_
#define HYDRA_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/observers.h"

namespace hydra::server::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // as sent, e.g. "POST"
  std::string path;    // the target without its query
  std::string target;  // as sent
  Headers headers;     // names lower-cased
  std::string body;

  // The first header called `name` (lower case), or "".
  std::string_view Header(std::string_view name) const;
};

// The answer to one request. Thread-safe: every call is carried out on the
// connection's strand, in the order made. Calls after the connection is
// gone, or after the response ended, do nothing.
class Responder {
 public:
  virtual ~Responder() = default;

  // A complete response with a Content-Length.
  virtual void Respond(int status, std::string content_type, std::string body,
                       Headers extra = {}) = 0;
  // A chunked response: StartStream once, Write any number of times (each
  // is sent as it comes, as its own chunk), then End.
  virtual void StartStream(int status, std::string content_type,
                           Headers extra = {}) = 0;
  virtual void Write(std::string data) = 0;
  virtual void End() = 0;

  // Runs `fn` on the connection's strand, after the calls made before it.
  // Dropped when the connection is gone.
  virtual void Post(std::function<void()> fn) = 0;
  // `fn` runs once, on the strand, when the response is aborted before it
  // ends: the client went away, a write failed or timed out, more than
  // `max_queued_bytes` waited to be written, or the server stopped. Set it
  // at most once, before starting work that must be cancelled; if the
  // response is already aborted it runs at once.
  virtual void OnAbort(std::function<void()> fn) = 0;
};

using Handler =
    std::function<void(HttpRequest request, std::shared_ptr<Responder>)>;

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;  // 0 picks a free port
  int io_threads = 2;
  size_t max_body_bytes = size_t{4} << 20;
  size_t max_header_bytes = size_t{64} << 10;
  // From the moment the server waits for a request (a new connection, or
  // the previous response sent) to its last header byte; an idle keep-alive
  // connection is closed when it passes.
  absl::Duration header_timeout = absl::Seconds(10);
  // From the end of the header to the last body byte.
  absl::Duration body_timeout = absl::Seconds(30);
  // Each write to the client (including the TLS handshake).
  absl::Duration write_timeout = absl::Seconds(30);
  // Response bytes waiting to be written, per connection, beyond which the
  // response is aborted (a client that does not read).
  size_t max_queued_bytes = size_t{4} << 20;
  // PEM text; both set: serve TLS.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Sees the requests refused before they reach the handler (malformed,
  // too large, too slow).
  RejectionObserver on_rejected;
};

class HttpServer {
 public:
  // Binds and starts serving; fails (naming the address) when it cannot.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      HttpServerOptions options, Handler handler);
  // Stops: closes the listener and every connection (aborting pending
  // responses), then joins the io threads.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  // Closes the listener and every connection, aborting pending responses;
  // idempotent. Outputs posted afterwards are dropped.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_HTTP_SERVER_H_
