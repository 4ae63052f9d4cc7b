#include "server/http/http_front_end.h"

#include <utility>

#include "common/status_macros.h"

namespace hydra::server::http {

absl::StatusOr<std::unique_ptr<HttpFrontEnd>> HttpFrontEnd::Start(
    HttpServerOptions server, OpenAiApiOptions api, OutputObserver observer) {
  std::unique_ptr<HttpFrontEnd> front(new HttpFrontEnd());
  front->api_ =
      std::make_unique<OpenAiApi>(std::move(api), std::move(observer));
  OpenAiApi* routes = front->api_.get();
  ASSIGN_OR_RETURN(
      front->server_,
      HttpServer::Start(
          std::move(server),
          [routes](HttpRequest request, std::shared_ptr<Responder> responder) {
            routes->Handle(std::move(request), std::move(responder));
          }));
  return front;
}

}  // namespace hydra::server::http
