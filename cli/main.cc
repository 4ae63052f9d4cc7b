// hydra: one binary, one subcommand per job.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "cli/commands.h"

namespace {

constexpr char kUsage[] =
    "hydra <command> [--flags]\n"
    "  convert   convert a llama2.c model.bin + tokenizer.model to a model "
    "folder\n"
    "  generate  generate text from a prompt on the command line\n"
    "  serve     serve the model over gRPC (health, reflection, metrics)\n"
    "  client    stream a completion from a running server\n"
    "Run `hydra <command> --helpfull` for a command's flags.";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() != 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string_view command = positional[1];
  absl::Status status;
  if (command == "convert") {
    status = hydra::cli::RunConvert();
  } else if (command == "generate") {
    status = hydra::cli::RunGenerate();
  } else if (command == "serve") {
    status = hydra::cli::RunServe();
  } else if (command == "client") {
    status = hydra::cli::RunClient();
  } else {
    std::fprintf(stderr, "unknown command '%s'\n%s\n", positional[1], kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "hydra %s: %s\n", positional[1],
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
