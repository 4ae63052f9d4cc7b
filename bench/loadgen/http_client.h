// A plain HTTP/1.1 client for the calls before a run (health, models, token
// counts): one keep-alive connection, one call at a time, each with its own
// timeout. The streams of a run go through openai_backend.h instead.
#ifndef HYDRA_BENCH_LOADGEN_HTTP_CLIENT_H_
#define HYDRA_BENCH_LOADGEN_HTTP_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hydra::loadgen {

// --target for HTTP: HOST:PORT, [V6]:PORT, optionally after "http://".
struct HttpTarget {
  std::string host;
  std::string port;
  std::string HostHeader() const;  // "host:port"
};
absl::StatusOr<HttpTarget> ParseHttpTarget(absl::string_view target);

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  // `api_key`, if set, goes as "Authorization: Bearer <key>".
  HttpClient(HttpTarget target, std::string api_key);
  ~HttpClient();

  // UNAVAILABLE when the server cannot be reached or the connection breaks,
  // DEADLINE_EXCEEDED past `timeout`; any HTTP status is a response.
  absl::StatusOr<HttpResponse> Get(const std::string& path,
                                   absl::Duration timeout);
  absl::StatusOr<HttpResponse> PostJson(const std::string& path,
                                        const std::string& body,
                                        absl::Duration timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_HTTP_CLIENT_H_
