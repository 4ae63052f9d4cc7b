// The subcommands of the `hydra` binary. Each reads its own abseil flags.
#ifndef HYDRA_CLI_COMMANDS_H_
#define HYDRA_CLI_COMMANDS_H_

#include "absl/status/status.h"

namespace hydra::cli {

// hydra convert: llama2.c model.bin + tokenizer.model -> model folder.
absl::Status RunConvert();
// hydra generate: offline generation, printing tokens as they come.
absl::Status RunGenerate();
// hydra serve: the gRPC server, health, reflection and metrics.
absl::Status RunServe();
// hydra client: streams a completion from a running server.
absl::Status RunClient();

}  // namespace hydra::cli

#endif  // HYDRA_CLI_COMMANDS_H_
