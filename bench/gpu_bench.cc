// GPU benchmark on synthetic Llama-shaped models (random BF16 weights drawn
// on the device; values do not affect timing): decode step time at several
// batch sizes against the memory-bandwidth floor (weight bytes / measured
// device copy bandwidth), prefill tokens/s against the measured BF16 matmul
// rate, and the share of a decode step lost to launch gaps with and without
// CUDA graphs. Prints one table row per measurement ("| ..." lines).
// Usage: hydra_gpu_bench [--models=1b,7b] [--batches=1,16,64,256]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "worker/cuda/cuda_runner.h"
#include "worker/cuda/device_buffer.h"
#include "worker/cuda/gemm.h"
#include "worker/step_plan_builder.h"

ABSL_FLAG(std::string, models, "1b,7b", "Synthetic shapes: 1b, 7b");
ABSL_FLAG(std::string, batches, "1,16,64,256", "Decode batch sizes");
ABSL_FLAG(int, context, 512, "Context length of each decoding sequence");
ABSL_FLAG(int, prefill_tokens, 4096, "Tokens of the prefill measurement");
ABSL_FLAG(int, steps, 20, "Timed steps per measurement");

namespace hydra::gpu {
namespace {

model::ModelConfig Shape(const std::string& name) {
  model::ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.max_position_embeddings = 4096;
  c.rope_theta = 10000.0f;
  if (name == "7b") {  // Llama-2-7B
    c.hidden_size = 4096;
    c.intermediate_size = 11008;
    c.num_layers = 32;
    c.num_heads = 32;
    c.num_kv_heads = 32;
    c.vocab_size = 32000;
  } else {  // ~1.2B, Llama-3.2-1B's shape
    c.hidden_size = 2048;
    c.intermediate_size = 8192;
    c.num_layers = 16;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.vocab_size = 128256;
  }
  c.head_dim = c.hidden_size / c.num_heads;
  return c;
}

double Params(const model::ModelConfig& c) {
  const double h = c.hidden_size, hd = c.head_dim;
  const double layer = h * (c.num_heads + 2.0 * c.num_kv_heads) * hd +
                       h * c.num_heads * hd + 3.0 * h * c.intermediate_size;
  return c.num_layers * layer + 2.0 * h * c.vocab_size;
}

// Seconds per call of f, by CUDA events over `reps` calls after a warm-up.
template <typename F>
double TimeDevice(int reps, F f, cudaStream_t stream = nullptr) {
  f();
  cudaDeviceSynchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < reps; ++i) f();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1e3 / reps;
}

// Device copy bandwidth, bytes/s counting the read and the write.
double CopyBandwidth() {
  const size_t bytes = size_t(2) << 30;
  auto a = DeviceBuffer<char>::Create(bytes);
  auto b = DeviceBuffer<char>::Create(bytes);
  if (!a.ok() || !b.ok()) return 0;
  const double t = TimeDevice(10, [&] {
    cudaMemcpyAsync(b->data(), a->data(), bytes, cudaMemcpyDeviceToDevice);
  });
  return 2.0 * bytes / t;
}

// BF16 GEMM rate (flop/s) at a large square size.
double MatmulRate() {
  const int n = 8192;
  auto x = DeviceBuffer<bf16>::Create(size_t(n) * n);
  auto w = DeviceBuffer<bf16>::Create(size_t(n) * n);
  auto y = DeviceBuffer<bf16>::Create(size_t(n) * n);
  auto blas = Blas::Create(nullptr);
  if (!x.ok() || !w.ok() || !y.ok() || !blas.ok()) return 0;
  FillUniform(x->data(), size_t(n) * n, 1, 1.0f, nullptr);
  FillUniform(w->data(), size_t(n) * n, 2, 1.0f, nullptr);
  // Checked once: a failing product would time as an infinite rate.
  if (!(*blas)
           ->Gemm(x->data(), n, n, n, w->data(), n, DType::kBF16, y->data(), n,
                  DType::kBF16)
           .ok()) {
    return 0;
  }
  const double t = TimeDevice(10, [&] {
    (*blas)
        ->Gemm(x->data(), n, n, n, w->data(), n, DType::kBF16, y->data(), n,
               DType::kBF16)
        .IgnoreError();
  });
  return 2.0 * n * n * n / t;
}

// Launch cost of `kernels` empty kernels replayed as one graph, seconds.
double EmptyGraphTime(int kernels);

// `batch` sequences decoding at position context - 1, one block table each.
internal::StepPlan DecodePlan(int batch, int context, int block_size) {
  worker::StepPlanBuilder builder(block_size);
  const int per_seq = (context + block_size - 1) / block_size;
  for (int s = 0; s < batch; ++s) {
    std::vector<int> table(per_seq);
    std::iota(table.begin(), table.end(), s * per_seq);
    builder.Add(std::vector<int>{1}, context - 1, table, true);
  }
  return builder.Take();
}

void Row(const std::string& model, const std::string& what,
         const std::string& value, const std::string& floor,
         const std::string& ratio) {
  std::printf("| %-4s | %-28s | %14s | %14s | %8s |\n", model.c_str(),
              what.c_str(), value.c_str(), floor.c_str(), ratio.c_str());
  std::fflush(stdout);
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

int Run() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "hydra_gpu_bench: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const double bandwidth = CopyBandwidth();
  const double matmul = MatmulRate();
  std::printf(
      "device: %s, %d SMs, %.0f GiB; copy bandwidth %.0f GB/s; BF16 "
      "matmul %.0f TFLOP/s\n",
      prop.name, prop.multiProcessorCount,
      prop.totalGlobalMem / double(1 << 30), bandwidth / 1e9, matmul / 1e12);
  std::printf("| %-4s | %-28s | %14s | %14s | %8s |\n", "model", "measure",
              "value", "floor/ceiling", "ratio");
  std::printf(
      "|------|------------------------------|----------------|------"
      "----------|----------|\n");
  std::vector<int> batches;
  for (absl::string_view b :
       absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    int n = 0;
    if (absl::SimpleAtoi(b, &n) && n > 0) batches.push_back(n);
  }
  if (batches.empty()) {
    std::fprintf(stderr, "hydra_gpu_bench: --batches names no batch size\n");
    return 1;
  }
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const int context = absl::GetFlag(FLAGS_context);
  const int steps = absl::GetFlag(FLAGS_steps);
  const int prefill = absl::GetFlag(FLAGS_prefill_tokens);
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_models), ',')) {
    const std::string model(name);
    const model::ModelConfig c = Shape(model);
    CudaRunnerOptions options;
    options.dtype = DType::kBF16;
    options.max_seqs = max_batch;
    options.max_graph_batch = max_batch;
    options.max_tokens = std::max(prefill, max_batch);
    options.memory_fraction = 0.92;
    auto runner = CudaRunner::CreateSynthetic(c, options, 1234);
    if (!runner.ok()) {
      std::fprintf(stderr, "%s: %s\n", model.c_str(),
                   runner.status().ToString().c_str());
      return 1;
    }
    CudaRunner& r = **runner;
    const double weight_bytes = double(r.weight_bytes());
    const double floor = weight_bytes / bandwidth;
    Row(model, Fmt("params %.2fB", Params(c) / 1e9),
        Fmt("%.1f GB", weight_bytes / 1e9),
        Fmt("%.0f KV blocks", r.num_blocks()), "");
    std::vector<int> tokens;
    for (int batch : batches) {
      const internal::StepPlan plan =
          DecodePlan(batch, context, r.block_size());
      const int per_seq = plan.sequences(0).block_table_size();
      if (batch * per_seq > r.num_blocks()) {
        Row(model, Fmt("decode b=%.0f", batch), "KV pool too small", "", "");
        continue;
      }
      std::vector<DeviceSamplingRow> greedy(batch);
      double seconds[2] = {0, 0};  // graph, eager
      for (int mode = 0; mode < 2; ++mode) {
        r.set_cuda_graphs(mode == 0);
        // The warm-up steps are checked: a failing step returns early, and
        // timing it would report an impossibly fast decode.
        for (int i = 0; i < 3; ++i) {
          if (absl::Status s = r.StepAndSample(plan, greedy, tokens, nullptr);
              !s.ok()) {
            std::fprintf(stderr, "%s decode b=%d: %s\n", model.c_str(), batch,
                         s.ToString().c_str());
            return 1;
          }
        }
        const absl::Time start = absl::Now();
        bool ok = true;
        for (int i = 0; i < steps; ++i) {
          ok &= r.StepAndSample(plan, greedy, tokens, nullptr).ok();
        }
        seconds[mode] = absl::ToDoubleSeconds(absl::Now() - start) / steps;
        if (!ok) {
          std::fprintf(stderr, "%s decode b=%d: a timed step failed\n",
                       model.c_str(), batch);
          return 1;
        }
        Row(model,
            Fmt("decode b=%.0f", batch) + (mode == 0 ? " graph" : " eager"),
            Fmt("%.3f ms", seconds[mode] * 1e3), Fmt("%.3f ms", floor * 1e3),
            Fmt("%.2fx", seconds[mode] / floor));
      }
      // Launch gaps. With graphs: what a graph of as many empty kernels
      // (about 13 per layer) costs, over the step. Eager: that plus what
      // graphs saved, over the eager step.
      const double empty = EmptyGraphTime(13 * c.num_layers + 6);
      Row(model, Fmt("launch gaps b=%.0f graph", batch),
          Fmt("%.1f %%", 100 * empty / seconds[0]), "", "");
      Row(model, Fmt("launch gaps b=%.0f eager", batch),
          Fmt("%.1f %%", 100 * std::max(0.0, seconds[1] - seconds[0] + empty) /
                             seconds[1]),
          "", "");
    }
    r.set_cuda_graphs(true);
    // Prefill: sequences of up to 1024 tokens filling prefill tokens.
    {
      worker::StepPlanBuilder builder(r.block_size());
      const int len = std::min(1024, prefill);
      const int seqs = std::max(1, prefill / len);
      const int per_seq = (len + r.block_size() - 1) / r.block_size();
      std::vector<int> ids(len, 1);
      for (int s = 0; s < seqs; ++s) {
        std::vector<int> table(per_seq);
        std::iota(table.begin(), table.end(), s * per_seq);
        builder.Add(ids, 0, table, true);
      }
      const internal::StepPlan plan = builder.Take();
      std::vector<DeviceSamplingRow> greedy(seqs);
      if (absl::Status s = r.StepAndSample(plan, greedy, tokens, nullptr);
          !s.ok()) {
        std::fprintf(stderr, "%s prefill: %s\n", model.c_str(),
                     s.ToString().c_str());
        return 1;
      }
      const absl::Time start = absl::Now();
      const int reps = 5;
      bool ok = true;
      for (int i = 0; i < reps; ++i) {
        ok &= r.StepAndSample(plan, greedy, tokens, nullptr).ok();
      }
      const double t = absl::ToDoubleSeconds(absl::Now() - start) / reps;
      if (!ok) {
        std::fprintf(stderr, "%s prefill: a timed step failed\n",
                     model.c_str());
        return 1;
      }
      const double tokens_per_s = seqs * len / t;
      const double ceiling = matmul / (2.0 * Params(c));
      Row(model, Fmt("prefill %.0f tok", seqs * len),
          Fmt("%.0f tok/s", tokens_per_s), Fmt("%.0f tok/s", ceiling),
          Fmt("%.0f %%", 100 * tokens_per_s / ceiling));
    }
  }
  return 0;
}

__attribute__((noinline)) double EmptyGraphTime(int kernels) {
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  auto buffer = DeviceBuffer<float>::Create(1);
  if (!buffer.ok()) return 0;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < kernels; ++i) {
    // A one-element add: as close to an empty kernel as the kernel set has.
    AddInPlace(buffer->data(), buffer->data(), 1, stream);
  }
  cudaStreamEndCapture(stream, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  const double t = TimeDevice(
      20, [&] { cudaGraphLaunch(exec, stream); }, stream);
  cudaStreamSynchronize(stream);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return t;
}

}  // namespace
}  // namespace hydra::gpu

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::gpu::Run();
}
