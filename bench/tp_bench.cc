// Tensor-parallel decode scaling: run under `mpirun -np N` (or alone for
// N = 1). Rank 0 drives decode steps of a sharded ModelRunner and reports
// step time, aggregate tokens/s and the share of the step spent in
// collectives; the other ranks run the worker loop.
// Usage: mpirun -np N hydra_tp_bench [--model=models/stories15M] [--steps=32]
#include <omp.h>

#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/forward_workload.h"
#include "worker/communicator.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(int, steps, 32, "Decode steps per figure");
ABSL_FLAG(int, repeats, 3, "Runs per figure; the best is reported");
ABSL_FLAG(int, context, 128, "Context length the decode steps start from");
ABSL_FLAG(int, max_batch, 64,
          "The larger of the two batch sizes measured (the other is 1)");

namespace hydra::bench {
namespace {

int Main() {
  std::unique_ptr<worker::Communicator> comm;
  if (worker::LaunchedByMpi()) {
    auto created = worker::CreateMpiCommunicator();
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    comm = std::move(*created);
  }
  const int ranks = comm == nullptr ? 1 : comm->size();
  const int max_batch = absl::GetFlag(FLAGS_max_batch);
  const int context = absl::GetFlag(FLAGS_context);
  auto config = model::LoadModelConfig(absl::GetFlag(FLAGS_model));
  if (!config.ok()) return 1;
  const int per_seq =
      (config->max_position_embeddings + ForwardWorkload::kBlockSize - 1) /
      ForwardWorkload::kBlockSize;
  auto runner = worker::ModelRunner::Load(absl::GetFlag(FLAGS_model),
                                          ForwardWorkload::kBlockSize,
                                          per_seq * max_batch, comm.get());
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().ToString().c_str());
    return 1;
  }
  if (comm != nullptr && comm->rank() != 0)
    return (*runner)->RunWorkerLoop().ok() ? 0 : 1;

  ForwardWorkload workload(**runner);
  const int steps = absl::GetFlag(FLAGS_steps);
  std::printf(
      "| ranks | OpenMP threads/rank | batch | step ms | tokens/s | "
      "collectives |\n"
      "|---:|---:|---:|---:|---:|---:|\n");
  for (int batch : {1, max_batch}) {
    double best = 0, share = 0;
    for (int i = 0; i < absl::GetFlag(FLAGS_repeats); ++i) {
      const double rate = workload.Decode(batch, context, steps);
      if (rate > best) {
        best = rate;
        share = workload.collective_seconds() / (steps * batch / rate);
      }
    }
    std::printf("| %d | %d | %d | %.2f | %.0f | %.0f%% |\n", ranks,
                omp_get_max_threads(), batch, 1e3 * batch / best, best,
                100 * share);
  }
  return (*runner)->ShutdownWorkers().ok() ? 0 : 1;
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::bench::Main();
}
