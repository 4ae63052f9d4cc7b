// What a front end reports about the calls it serves, for metrics. Both
// front ends take these, so neither depends on server/metrics.
#ifndef HYDRA_SERVER_OBSERVERS_H_
#define HYDRA_SERVER_OBSERVERS_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/request.h"

namespace hydra::server {

// Sees every engine output; called on the engine thread. `previous` is the
// time of the request's previous tokens (InfinitePast() for the first).
using OutputObserver =
    std::function<void(const engine::EngineOutput& out, absl::Time previous)>;

// Sees every request refused before it reached the engine's running set
// (bad input, wrong key, full queue, loading or draining), with the code it
// was refused with. Called on the front end's threads.
using RejectionObserver = std::function<void(absl::StatusCode code)>;

}  // namespace hydra::server

#endif  // HYDRA_SERVER_OBSERVERS_H_
