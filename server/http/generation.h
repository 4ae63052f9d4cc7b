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

namespace hydra::server::http {

// Sees every engine output (for metrics); called on the engine thread.
// `previous` is the time of the request's previous tokens (InfinitePast()
// for the first).
using OutputObserver =
    std::function<void(const engine::EngineOutput& out, absl::Time previous)>;

struct GenerationSpec {
  bool chat = false;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;  // the request asked for logprobs
  std::string model_name;
};

// Submits the choices and answers through `responder`: a refused Submit
// becomes an error response (429 when the queue is full). Call on the
// responder's strand (from the handler).
void StartGeneration(engine::Engine* engine,
                     const engine::EngineRequest& request, GenerationSpec spec,
                     std::shared_ptr<Responder> responder,
                     const OutputObserver& observer);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_GENERATION_H_
