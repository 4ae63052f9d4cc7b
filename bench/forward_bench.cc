// Forward-pass throughput of a real model on this machine, set against the
// machine's own ceilings measured in the same run:
//   decode bandwidth ceiling = read bandwidth / bytes read per decode step
//   compute ceiling          = FMA peak / FLOPs per token
// Usage: hydra_forward_bench [--model=models/stories15M] [--threads=N]
//        [--weight_dtype=auto|fp32|bf16|f16|int8] [--kv_cache_dtype=...]
//        [--context=128] [--batches=8,32,64]
//        [--prefill_chunk=N [--chunk_contexts=512,2048,8192,32768]]
//        [--verify_tokens=1,2,3,5,9]  (one sequence at --context)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/forward_workload.h"
#include "bench/machine_probe.h"
#include "worker/model_runner.h"
#include "worker/step_plan_builder.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(int, threads, 0, "CPU threads; 0 = OpenMP's default");
ABSL_FLAG(int, repeats, 5, "Runs per figure; the best is reported");
ABSL_FLAG(int, only_batch, 0,
          "Run only the decode figure for this batch size (for profiling)");
ABSL_FLAG(std::string, weight_dtype, "auto", "auto, fp32, bf16, f16, int8");
ABSL_FLAG(std::string, kv_cache_dtype, "auto", "auto, fp32, bf16, f16, int8");
ABSL_FLAG(int, context, 128,
          "Context of the batched decode figures; the prefill prompt length");
ABSL_FLAG(std::string, batches, "8,32,64", "Batched decode sizes");
ABSL_FLAG(int, prefill_chunk, 0,
          "When > 0, only time one prefill chunk of this many tokens ending "
          "at each of --chunk_contexts (earlier positions cached)");
ABSL_FLAG(std::string, verify_tokens, "",
          "Instead: the cost of a decode step of one sequence at --context "
          "that verifies N-1 speculative drafts (N query tokens, N logits "
          "rows), for each N of the list, against N = 1");
ABSL_FLAG(std::string, chunk_contexts, "512,2048,8192,32768",
          "Contexts (chunk included) of the --prefill_chunk figures");

namespace hydra::bench {
namespace {

constexpr int kBlockSize = ForwardWorkload::kBlockSize;
constexpr int kDecodeSteps = 32;

template <typename F>
double Best(int repeats, F f) {
  double best = 0;
  for (int i = 0; i < repeats; ++i) best = std::max(best, f());
  return best;
}

// A comma-separated list of positive integers; false (and a message) if
// an item is not one.
bool ParseList(const char* flag, const std::string& text,
               std::vector<int>& out) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(item, &n) || n <= 0) {
      std::fprintf(stderr, "--%s: '%s' is not a positive integer\n", flag,
                   std::string(item).c_str());
      return false;
    }
    out.push_back(n);
  }
  return true;
}

int Main() {
  if (absl::GetFlag(FLAGS_threads) > 0)
    omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  const int repeats = absl::GetFlag(FLAGS_repeats);
  const int chunk = absl::GetFlag(FLAGS_prefill_chunk);
  std::vector<int> batches, chunk_contexts, verify_tokens;
  if (!ParseList("batches", absl::GetFlag(FLAGS_batches), batches) ||
      !ParseList("chunk_contexts", absl::GetFlag(FLAGS_chunk_contexts),
                 chunk_contexts) ||
      !ParseList("verify_tokens", absl::GetFlag(FLAGS_verify_tokens),
                 verify_tokens)) {
    return 2;
  }
  if (!verify_tokens.empty()) {
    if (chunk > 0) {
      std::fprintf(stderr, "--verify_tokens and --prefill_chunk: pick one\n");
      return 2;
    }
    batches.clear();  // one sequence
  }
  if (chunk > 0) {
    // One sequence, as long as the longest chunk context.
    batches.clear();
    for (int c : chunk_contexts) {
      if (c < chunk) {
        std::fprintf(stderr, "--chunk_contexts: %d is under the chunk (%d)\n",
                     c, chunk);
        return 2;
      }
    }
  }
  const int context = chunk > 0 ? *std::max_element(chunk_contexts.begin(),
                                                    chunk_contexts.end())
                                : absl::GetFlag(FLAGS_context);
  const int max_batch = std::max(
      1,
      batches.empty() ? 1 : *std::max_element(batches.begin(), batches.end()));
  auto config = model::LoadModelConfig(absl::GetFlag(FLAGS_model));
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  // The KV pool holds what the figures use: max_batch sequences of the
  // context plus the decode steps (the single-stream figure reuses them).
  const int verify_max =
      verify_tokens.empty()
          ? 0
          : *std::max_element(verify_tokens.begin(), verify_tokens.end());
  const int max_context =
      std::min(config->max_position_embeddings,
               std::max(context, 128) + std::max(kDecodeSteps, verify_max));
  const int per_seq = (max_context + kBlockSize - 1) / kBlockSize;
  const auto load_start = std::chrono::steady_clock::now();
  auto runner = worker::ModelRunner::Load(
      absl::GetFlag(FLAGS_model),
      {.block_size = kBlockSize,
       .num_blocks = per_seq * max_batch,
       .weight_dtype = absl::GetFlag(FLAGS_weight_dtype),
       .kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype),
       .max_positions = max_context});
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().ToString().c_str());
    return 1;
  }
  const double load_seconds = std::chrono::duration<double>(
                                  std::chrono::steady_clock::now() - load_start)
                                  .count();
  const auto& c = *config;
  ForwardWorkload bench(**runner, max_context);
  const bool int8 = (*runner)->weight_dtype() == "int8";

  // Bytes a decode step must read: every weight once (a tied classifier is
  // the embedding, read whole), but only one row of an untied embedding;
  // plus the KV of the context.
  const double weight_bytes = double((*runner)->weight_bytes());
  const bool tied = c.tie_word_embeddings;
  const double params = double(c.vocab_size) * c.hidden_size;
  const double bytes_per_param =
      weight_bytes / (params * (tied ? 1 : 2) +
                      double(c.num_layers) *
                          (double(c.hidden_size) *
                               (c.num_heads + 2 * c.num_kv_heads) * c.head_dim +
                           double(c.num_heads) * c.head_dim * c.hidden_size +
                           3.0 * c.hidden_size * c.intermediate_size));
  const double embedding_bytes = tied ? 0.0 : params * bytes_per_param;
  const double kv_token_bytes =
      2.0 * c.num_layers * c.num_kv_heads *
      cpu::KvBytesPerHead((*runner)->kv_cache().shape().type, c.head_dim);
  const double kv = double(c.num_kv_heads) * c.head_dim;
  const double q = double(c.num_heads) * c.head_dim;
  // FLOPs per token: every projection once; the classifier only for tokens
  // that sample; QKᵀ and PV over the token's context (always fp32 FMAs).
  const double layer_flops = 2.0 * c.num_layers *
                             (c.hidden_size * (q + 2 * kv) + q * c.hidden_size +
                              3.0 * c.hidden_size * c.intermediate_size);
  const double classifier_flops = 2.0 * c.vocab_size * c.hidden_size;
  const double attention_flops_per_position = 4.0 * c.num_layers * q;

  const double bandwidth = MeasureReadBandwidthGBs();
  const double fma_peak = MeasureFmaPeakGflops();
  const double int8_peak = MeasureInt8PeakGops();
  const double linear_peak = int8 ? int8_peak : fma_peak;
  // Seconds per token at the compute ceiling: projections at the weights'
  // peak, attention at the fp32 FMA peak.
  auto compute_ceiling = [&](double linear_flops, double average_context) {
    return 1.0 /
           (linear_flops / (linear_peak * 1e9) +
            attention_flops_per_position * average_context / (fma_peak * 1e9));
  };
  auto bandwidth_ceiling = [&](double average_context) {
    return bandwidth * 1e9 /
           (weight_bytes - embedding_bytes + kv_token_bytes * average_context);
  };

  std::printf("machine: %s\n", DescribeMachine().c_str());
  std::printf(
      "model: %s; weights %s (%.2f GB resident, %.2f bytes/parameter), KV %s "
      "(%.0f bytes/token); loaded in %.2f s\n",
      absl::GetFlag(FLAGS_model).c_str(), (*runner)->weight_dtype().c_str(),
      weight_bytes / 1e9, bytes_per_param, (*runner)->kv_cache_dtype().c_str(),
      kv_token_bytes, load_seconds);
  std::printf(
      "read bandwidth %.1f GB/s; fp32 FMA peak %.1f GFLOP/s; int8 dot peak "
      "%.1f GOP/s\n\n",
      bandwidth, fma_peak, int8_peak);

  if (chunk > 0) {
    if (context > max_context) {
      std::fprintf(stderr, "context %d is over the model's %d positions\n",
                   context, max_context);
      return 2;
    }
    std::printf(
        "| workload | tokens/s | ceiling | %% of ceiling "
        "|\n|---|---:|---:|---:|\n");
    for (int c : chunk_contexts) {
      const double rate =
          Best(repeats, [&] { return bench.PrefillChunkRate(c, chunk); });
      // Token i of the chunk attends to c - chunk + i + 1 positions.
      const double ceiling =
          compute_ceiling(layer_flops + classifier_flops / chunk,
                          c - chunk + (chunk + 1) / 2.0);
      std::printf(
          "| prefill chunk, %d tokens at context %d | %.0f | %.0f (compute) "
          "| %.0f%% |\n",
          chunk, c, rate, ceiling, 100 * rate / ceiling);
    }
    return 0;
  }
  if (!verify_tokens.empty()) {
    if (context + verify_max > max_context) {
      std::fprintf(stderr, "context %d + %d tokens is over the model's %d\n",
                   context, verify_max, max_context);
      return 2;
    }
    // What a draft costs decides what speculation can gain: a step of N
    // tokens that costs r times a 1-token step gives at most N / r the
    // tokens per second (every draft accepted).
    std::printf(
        "| query tokens (drafts + 1) at context %d | ms per step | x the "
        "1-token step | tokens/s gain if all accepted |\n"
        "|---:|---:|---:|---:|\n",
        context);
    const double one =
        Best(repeats, [&] { return bench.VerifyStepRate(context, 1); });
    for (int n : verify_tokens) {
      const double rate = n == 1 ? one : Best(repeats, [&] {
        return bench.VerifyStepRate(context, n);
      });
      std::printf("| %d | %.2f | %.2f | %.2fx |\n", n, 1e3 / rate, one / rate,
                  n * rate / one);
    }
    return 0;
  }
  if (const int only = absl::GetFlag(FLAGS_only_batch); only > 0) {
    std::printf("decode, %d sequences: %.0f tokens/s\n", only,
                Best(repeats, [&] {
                  return bench.Decode(only, context, kDecodeSteps);
                }));
    return 0;
  }
  std::printf(
      "| workload | tokens/s | ceiling | %% of ceiling "
      "|\n|---|---:|---:|---:|\n");
  const double single =
      Best(repeats, [&] { return bench.Decode(1, 1, kDecodeSteps); });
  const double single_ceiling = bandwidth_ceiling(kDecodeSteps / 2.0);
  std::printf(
      "| decode, 1 sequence (context 1..%d) | %.1f | %.1f (bandwidth) | "
      "%.0f%% |\n",
      kDecodeSteps, single, single_ceiling, 100 * single / single_ceiling);
  const double decode_context = context + kDecodeSteps / 2.0;
  for (int batch : batches) {
    const double rate = Best(
        repeats, [&] { return bench.Decode(batch, context, kDecodeSteps); });
    const double ceiling = std::min(
        compute_ceiling(layer_flops + classifier_flops, decode_context),
        bandwidth_ceiling(decode_context) * batch);
    std::printf(
        "| decode, %d sequences at context %d | %.0f | %.0f (compute) | "
        "%.0f%% |\n",
        batch, context, rate, ceiling, 100 * rate / ceiling);
  }
  // One prompt of `context` tokens: one classifier row, average context
  // (context + 1) / 2.
  const double prefill =
      Best(repeats, [&] { return bench.PrefillRate(1, context); });
  const double prefill_ceiling = compute_ceiling(
      layer_flops + classifier_flops / context, (context + 1) / 2.0);
  std::printf(
      "| prefill, 1 prompt x %d tokens | %.0f | %.0f (compute) | %.0f%% |\n",
      context, prefill, prefill_ceiling, 100 * prefill / prefill_ceiling);
  return 0;
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::bench::Main();
}
