// The engine flags `serve` and `generate` share: the number formats of the
// weights and the KV cache, and the context cap.
#ifndef HYDRA_CLI_ENGINE_FLAGS_H_
#define HYDRA_CLI_ENGINE_FLAGS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"

namespace hydra::cli {

// Copies the shared flags into `options`; an error names a bad flag.
absl::Status ApplyEngineFlags(engine::EngineOptions& options);

// One line for the start-up log: formats, resident weight bytes, KV
// capacity and how long loading took.
std::string DescribeLoadedEngine(const engine::Engine& engine,
                                 absl::Duration load_time);

}  // namespace hydra::cli

#endif  // HYDRA_CLI_ENGINE_FLAGS_H_
