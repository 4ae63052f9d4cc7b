// Microbenchmarks of the CPU kernels on stories15M's shapes (hidden 288,
// intermediate 768, vocab 32000). Compare GFLOP/s with the FMA peak and GB/s
// with the read bandwidth that hydra_forward_bench's machine probe reports.
//
// MatMul/m/n/k reuses one matrix, so all but the 32000-row lm_head stay in
// cache between iterations. MatMulCold/n/k cycles through enough copies
// (>= 256 MiB) that every call streams its weights from DRAM, as a decode
// step through a model larger than the L3 does.
//
// PrefillAttention/tiled/kv/context is one layer's attention on
// Qwen2.5-0.5B's heads (14 query, 2 KV, head size 64): a 512-token chunk
// ending at `context`, through the tiled kernel (tiled:1, what
// PagedAttention runs) or the per-token one (tiled:0).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "worker/cpu/kernels.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::cpu {
namespace {

std::vector<float> RandomVector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

void SetMatMulCounters(benchmark::State& state, int m, const PackedMatrix& w) {
  const double flops = 2.0 * m * w.rows() * w.cols();
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  // Weights dominate the traffic for small m; x and y are counted too.
  const double bytes =
      w.bytes() + (double(m) * w.cols() + double(m) * w.rows()) * sizeof(float);
  state.counters["GB/s"] = benchmark::Counter(
      bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MatMul(benchmark::State& state) {
  const int m = int(state.range(0)), n = int(state.range(1)),
            k = int(state.range(2));
  const PackedMatrix w(RandomVector(size_t(n) * k, 1), n, k);
  const std::vector<float> x = RandomVector(size_t(m) * k, 2);
  std::vector<float> y(size_t(m) * n);
  for (auto _ : state) {
    MatMul(x.data(), m, k, w, nullptr, y.data(), n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetMatMulCounters(state, m, w);
}

void MatMulShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k"});
  // QKV, O, gate+up, lm_head (k = hidden) and down (k = intermediate).
  const int64_t shapes[][2] = {
      {864, 288}, {288, 288}, {1536, 288}, {32000, 288}, {288, 768}};
  for (int64_t m : {1, 8, 64, 128}) {
    for (const auto& s : shapes) b->Args({m, s[0], s[1]});
  }
}
BENCHMARK(BM_MatMul)->Apply(MatMulShapes)->UseRealTime();

void BM_MatMulCold(benchmark::State& state) {
  const int m = int(state.range(0)), n = int(state.range(1)),
            k = int(state.range(2));
  const WeightType type = state.range(3) ? WeightType::kBF16 : WeightType::kF32;
  const size_t bytes = size_t(n) * k * (state.range(3) ? 2 : sizeof(float));
  const size_t copies = std::max<size_t>(2, (size_t(256) << 20) / bytes + 1);
  std::vector<PackedMatrix> ws;
  for (size_t c = 0; c < copies; ++c) {
    ws.emplace_back(RandomVector(size_t(n) * k, uint32_t(c)), n, k, type);
  }
  const std::vector<float> x = RandomVector(size_t(m) * k, 99);
  std::vector<float> y(size_t(m) * n);
  size_t next = 0;
  for (auto _ : state) {
    MatMul(x.data(), m, k, ws[next], nullptr, y.data(), n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == copies ? 0 : next + 1;
  }
  SetMatMulCounters(state, m, ws[0]);
}
// m = 1: a decode step of one sequence; m = 2..6: a few sequences, or one
// verifying speculative drafts, which should cost about the weight reads
// too. bf16 on Qwen2.5-0.5B's MLP shape (4864 x 896) and classifier.
BENCHMARK(BM_MatMulCold)
    ->ArgNames({"m", "n", "k", "bf16"})
    ->Args({1, 864, 288, 0})
    ->Args({1, 1536, 288, 0})
    ->Args({1, 32000, 288, 0})
    ->Args({1, 288, 768, 0})
    ->ArgsProduct({{1, 2, 3, 4, 5, 6, 8, 9, 12}, {4864}, {896}, {1}})
    ->Args({1, 151936, 896, 1})
    ->Args({5, 151936, 896, 1})
    ->UseRealTime();

void SetBytesCounter(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(
      bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_RmsNorm(benchmark::State& state) {
  const int m = int(state.range(0)), dim = 288;
  const std::vector<float> x = RandomVector(size_t(m) * dim, 1);
  const std::vector<float> weight = RandomVector(dim, 2);
  std::vector<float> out(x.size());
  for (auto _ : state) {
    RmsNorm(x.data(), weight.data(), m, dim, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetBytesCounter(state, 2.0 * x.size() * sizeof(float));
}
BENCHMARK(BM_RmsNorm)->ArgName("m")->Arg(1)->Arg(64)->Arg(512)->UseRealTime();

void BM_ApplyRope(benchmark::State& state) {
  const int m = int(state.range(0)), heads = 6, head_dim = 48;
  const RopeTable table(1024, head_dim, 10000.0f, model::RopeScaling{});
  std::vector<float> x = RandomVector(size_t(m) * heads * head_dim, 1);
  std::vector<int32_t> positions(m);
  for (int i = 0; i < m; ++i) positions[i] = i % 1024;
  for (auto _ : state) {
    ApplyRope(x.data(), m, heads * head_dim, heads, positions.data(), table);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  SetBytesCounter(state, 2.0 * x.size() * sizeof(float));
}
BENCHMARK(BM_ApplyRope)->ArgName("m")->Arg(1)->Arg(64)->Arg(512)->UseRealTime();

void BM_SiluMul(benchmark::State& state) {
  const int m = int(state.range(0)), hidden = 768;
  const std::vector<float> gate_up = RandomVector(size_t(m) * 2 * hidden, 1);
  std::vector<float> out(size_t(m) * hidden);
  for (auto _ : state) {
    SiluMul(gate_up.data(), m, hidden, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetBytesCounter(state, 3.0 * out.size() * sizeof(float));
}
BENCHMARK(BM_SiluMul)->ArgName("m")->Arg(1)->Arg(64)->Arg(512)->UseRealTime();

void BM_AddInPlace(benchmark::State& state) {
  const size_t n = size_t(state.range(0)) * 288;
  std::vector<float> x = RandomVector(n, 1);
  const std::vector<float> y = RandomVector(n, 2);
  for (auto _ : state) {
    AddInPlace(x.data(), y.data(), n);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  SetBytesCounter(state, 3.0 * n * sizeof(float));
}
BENCHMARK(BM_AddInPlace)
    ->ArgName("m")
    ->Arg(1)
    ->Arg(64)
    ->Arg(512)
    ->UseRealTime();

void BM_EmbeddingLookup(benchmark::State& state) {
  const int m = int(state.range(0)), vocab = 32000, dim = 288;
  const PackedMatrix table(RandomVector(size_t(vocab) * dim, 1), vocab, dim);
  std::vector<int32_t> ids(m);
  std::mt19937 rng(3);
  for (int32_t& id : ids) id = int32_t(rng() % vocab);
  std::vector<float> out(size_t(m) * dim);
  for (auto _ : state) {
    EmbeddingLookup(table, 0, ids.data(), m, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetBytesCounter(state, 2.0 * out.size() * sizeof(float));
}
BENCHMARK(BM_EmbeddingLookup)
    ->ArgName("m")
    ->Arg(1)
    ->Arg(64)
    ->Arg(512)
    ->UseRealTime();

void BM_PrefillAttention(benchmark::State& state) {
  constexpr int kHeads = 14, kKvHeads = 2, kHeadDim = 64, kBlock = 16;
  constexpr int kChunk = 512;
  const bool tiled = state.range(0) != 0;
  const KvType type = static_cast<KvType>(state.range(1));
  const int context = int(state.range(2));
  const int blocks = (context + kBlock - 1) / kBlock;
  const size_t slots = size_t(blocks) * kBlock;
  const int row = kKvHeads * kHeadDim;
  const size_t bytes = slots * kKvHeads * KvBytesPerHead(type, kHeadDim);
  std::vector<uint8_t> k(bytes), v(bytes);
  std::vector<float> k_scale(slots * kKvHeads), v_scale(k_scale.size());
  const PagedKvLayer cache{.k = k.data(),
                           .v = v.data(),
                           .k_scale = k_scale.data(),
                           .v_scale = v_scale.data(),
                           .type = type,
                           .num_blocks = blocks,
                           .block_size = kBlock,
                           .kv_heads = kKvHeads,
                           .head_dim = kHeadDim};
  std::vector<int32_t> table(blocks), all(slots);
  for (int b = 0; b < blocks; ++b) table[b] = b;
  for (size_t i = 0; i < slots; ++i) all[i] = int32_t(i);
  const std::vector<float> kv = RandomVector(slots * row, 1);
  WriteKv(kv.data(), kv.data(), row, int(slots), all.data(), cache);
  const int q_width = kHeads * kHeadDim;
  const std::vector<float> q = RandomVector(size_t(kChunk) * q_width, 2);
  std::vector<int32_t> positions(kChunk);
  std::vector<const int32_t*> tables(kChunk, table.data());
  for (int t = 0; t < kChunk; ++t) positions[t] = context - kChunk + t;
  std::vector<float> out(size_t(kChunk) * q_width);
  auto kernel = tiled ? PagedAttention : PerTokenPagedAttention;
  for (auto _ : state) {
    kernel(q.data(), q_width, kChunk, kHeads, cache, positions.data(),
           tables.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // QK^T and PV: 2 FMAs per (query head, position, dimension).
  const double positions_attended =
      double(kChunk) * (context - kChunk) + kChunk * (kChunk + 1) / 2.0;
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * kHeads * kHeadDim * positions_attended * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PrefillAttention)
    ->ArgNames({"tiled", "kv", "context"})
    ->ArgsProduct({{0, 1},
                   {int(KvType::kF32), int(KvType::kBF16), int(KvType::kInt8)},
                   {512, 2048, 8192, 32768}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace hydra::cpu

BENCHMARK_MAIN();
