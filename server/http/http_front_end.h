// The HTTP front end as `hydra serve` runs it: the OpenAI routes
// (OpenAiApi) on an HttpServer.
#ifndef HYDRA_SERVER_HTTP_HTTP_FRONT_END_H_
#define HYDRA_SERVER_HTTP_HTTP_FRONT_END_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/http/http_server.h"
#include "server/http/openai_api.h"

namespace hydra::server::http {

class HttpFrontEnd {
 public:
  // Listens at once; until AttachEngine, requests get 503.
  static absl::StatusOr<std::unique_ptr<HttpFrontEnd>> Start(
      HttpServerOptions server, OpenAiApiOptions api, OutputObserver observer);

  void AttachEngine(engine::Engine* engine) { api_->AttachEngine(engine); }
  void StartDraining() { api_->StartDraining(); }
  // Closes every connection (cancelling their engine requests); call before
  // the engine is destroyed.
  void Stop() { server_->Stop(); }
  int port() const { return server_->port(); }

 private:
  HttpFrontEnd() = default;
  std::unique_ptr<OpenAiApi> api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_HTTP_FRONT_END_H_
