// Forward-pass throughput of a real model on this machine, set against the
// machine's own ceilings measured in the same run:
//   decode bandwidth ceiling = read bandwidth / bytes read per decode step
//   compute ceiling          = FMA peak / FLOPs per token
// Usage: hydra_forward_bench [--model=models/stories15M] [--threads=N]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/forward_workload.h"
#include "bench/machine_probe.h"
#include "worker/model_runner.h"
#include "worker/step_plan_builder.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(int, threads, 0, "CPU threads; 0 = OpenMP's default");
ABSL_FLAG(int, repeats, 5, "Runs per figure; the best is reported");
ABSL_FLAG(int, only_batch, 0,
          "Run only the decode figure for this batch size (for profiling)");

namespace hydra::bench {
namespace {

constexpr int kBlockSize = ForwardWorkload::kBlockSize;

template <typename F>
double Best(int repeats, F f) {
  double best = 0;
  for (int i = 0; i < repeats; ++i) best = std::max(best, f());
  return best;
}

int Main() {
  if (absl::GetFlag(FLAGS_threads) > 0)
    omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  const int repeats = absl::GetFlag(FLAGS_repeats);
  constexpr int kMaxBatch = 128;
  auto config = model::LoadModelConfig(absl::GetFlag(FLAGS_model));
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  const int per_seq =
      (config->max_position_embeddings + kBlockSize - 1) / kBlockSize;
  auto runner = worker::ModelRunner::Load(absl::GetFlag(FLAGS_model),
                                          kBlockSize, per_seq * kMaxBatch);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().ToString().c_str());
    return 1;
  }
  const auto& c = *config;
  ForwardWorkload bench(**runner);

  // Bytes a decode step must read: every weight once (the classifier
  // included), but only one embedding row.
  const double embedding_bytes = double(c.vocab_size) * c.hidden_size * 4;
  const double step_bytes = (*runner)->weight_bytes() - embedding_bytes;
  const double kv = double(c.num_kv_heads) * c.head_dim;
  const double q = double(c.num_heads) * c.head_dim;
  // FLOPs per token: every projection once; the classifier only for tokens
  // that sample; QKᵀ and PV over the token's context.
  const double layer_flops = 2.0 * c.num_layers *
                             (c.hidden_size * (q + 2 * kv) + q * c.hidden_size +
                              3.0 * c.hidden_size * c.intermediate_size);
  const double classifier_flops = 2.0 * c.vocab_size * c.hidden_size;
  const double attention_flops_per_position = 4.0 * c.num_layers * q;
  const int context = 128;
  const double flops_per_token =
      layer_flops + classifier_flops + attention_flops_per_position * context;
  // A 128-token prompt: one classifier row, average context 64.5.
  const int prompt = 128;
  const double prefill_flops_per_token =
      layer_flops + classifier_flops / prompt +
      attention_flops_per_position * (prompt + 1) / 2;

  const double bandwidth = MeasureReadBandwidthGBs();
  const double peak = MeasureFmaPeakGflops();
  const double bw_ceiling = bandwidth * 1e9 / step_bytes;
  const double compute_ceiling = peak * 1e9 / flops_per_token;
  const double prefill_ceiling = peak * 1e9 / prefill_flops_per_token;

  std::printf("machine: %s\n", DescribeMachine().c_str());
  std::printf(
      "model: %s (%.1f MB read per decode step, %.1f MFLOP per token at "
      "context %d)\n",
      absl::GetFlag(FLAGS_model).c_str(), step_bytes / 1e6,
      flops_per_token / 1e6, context);
  std::printf("read bandwidth: %.1f GB/s -> decode ceiling %.0f tokens/s\n",
              bandwidth, bw_ceiling);
  std::printf(
      "fp32 FMA peak: %.1f GFLOP/s -> compute ceiling %.0f tokens/s\n\n", peak,
      compute_ceiling);

  if (const int only = absl::GetFlag(FLAGS_only_batch); only > 0) {
    std::printf("decode, %d sequences: %.0f tokens/s\n", only,
                Best(repeats, [&] { return bench.Decode(only, context, 32); }));
    return 0;
  }
  std::printf(
      "| workload | tokens/s | ceiling | %% of ceiling "
      "|\n|---|---:|---:|---:|\n");
  const double single = Best(repeats, [&] { return bench.Decode(1, 1, 128); });
  std::printf(
      "| decode, 1 sequence (context 1..128) | %.0f | %.0f (bandwidth) | "
      "%.0f%% |\n",
      single, bw_ceiling, 100 * single / bw_ceiling);
  for (int batch : {8, 32, 64, 128}) {
    const double rate =
        Best(repeats, [&] { return bench.Decode(batch, context, 32); });
    std::printf(
        "| decode, %d sequences at context 128 | %.0f | %.0f (compute) | "
        "%.0f%% |\n",
        batch, rate, compute_ceiling, 100 * rate / compute_ceiling);
  }
  const double prefill =
      Best(repeats, [&] { return bench.PrefillRate(8, prompt); });
  std::printf(
      "| prefill, 8 prompts x %d tokens | %.0f | %.0f (compute, %.1f "
      "MFLOP/token) | %.0f%% |\n",
      prompt, prefill, prefill_ceiling, prefill_flops_per_token / 1e6,
      100 * prefill / prefill_ceiling);
  return 0;
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::bench::Main();
}
