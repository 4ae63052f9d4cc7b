// POST /v1/warm_prefix: computes a prompt's KV into the prefix cache without
// generating (the HTTP side of hydra.v1.Inference/WarmPrefix) and answers
// {"prompt_tokens", "cached_tokens", "reused_tokens"} once it is done.
#ifndef HYDRA_SERVER_HTTP_WARM_PREFIX_H_
#define HYDRA_SERVER_HTTP_WARM_PREFIX_H_

#include <memory>

#include "absl/status/status.h"
#include "engine/engine.h"
#include "server/http/http_server.h"
#include "server/observers.h"

namespace hydra::server::http {

// Submits `request` (validated; made prefill-only here) and answers through
// `responder`. A refused Submit is answered with its error and returned.
// Call on the responder's strand.
absl::Status StartWarmPrefix(engine::Engine* engine,
                             engine::EngineRequest request,
                             std::shared_ptr<Responder> responder,
                             const OutputObserver& observer);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_WARM_PREFIX_H_
