// One OpenAI completion or chat completion in flight: its n choices are n
// engine requests on the same prompt ids (the prefix cache shares the
// prompt's KV blocks). Engine outputs arrive on the engine thread and are
// posted to the connection's strand, where they become SSE chunks (stream)
// or one response (when every choice has finished). An aborted response
// (client gone, write failure, too many queued bytes) cancels every choice.
#ifndef HYDRA_SERVER_HTTP_GENERATION_H_
#define HYDRA_SERVER_HTTP_GENERATION_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "engine/engine.h"
#include "server/http/http_server.h"
#include "server/observers.h"

namespace hydra::server::http {

struct GenerationSpec {
  bool chat = false;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;  // the request asked for logprobs
  std::string model_name;
};

// Submits the choices and answers through `responder`: a refused Submit
// becomes an error response (429 when the queue is full) and is returned.
// Call on the responder's strand (from the handler).
absl::Status StartGeneration(engine::Engine* engine,
                             const engine::EngineRequest& request,
                             GenerationSpec spec,
                             std::shared_ptr<Responder> responder,
                             const OutputObserver& observer);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_GENERATION_H_
