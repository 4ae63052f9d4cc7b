// The engine flags `serve` and `generate` share: the number formats of the
// weights and the KV cache, and the context cap.
#ifndef HYDRA_SERVER_ENGINE_FLAGS_H_
#define HYDRA_SERVER_ENGINE_FLAGS_H_

#include <string>

#include "absl/time/time.h"
#include "server/engine.h"
#include "server/engine_factory.h"

namespace hydra {

// Copies the shared flags into `options`.
void ApplyEngineFlags(EngineOptions& options);

// One line for the start-up log: formats, resident weight bytes, KV
// capacity and how long loading took.
std::string DescribeLoadedEngine(const Engine& engine,
                                 absl::Duration load_time);

}  // namespace hydra

#endif  // HYDRA_SERVER_ENGINE_FLAGS_H_
