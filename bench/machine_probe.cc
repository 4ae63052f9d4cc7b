#include "bench/machine_probe.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <utility>

namespace hydra::bench {
namespace {

constexpr int kRuns = 5;

// Keeps the compiler from discarding a probe's result.
volatile float g_sink = 0.0f;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using FloatArray = std::unique_ptr<float[], FreeDeleter>;

FloatArray AllocateFloats(size_t n) {
  void* p = std::aligned_alloc(64, n * sizeof(float));
  if (p == nullptr) throw std::bad_alloc();
  return FloatArray(static_cast<float*>(p));
}

// The [begin, end) share of `n` items that thread `t` of `nt` owns, rounded
// to whole `unit`s so every thread's loop runs on full vectors.
std::pair<size_t, size_t> ThreadShare(size_t n, size_t unit, int t, int nt) {
  size_t units = n / unit;
  return {units * t / nt * unit, units * (t + 1) / nt * unit};
}

// One pass of a sum over `n` floats (n a multiple of 64). Eight accumulators
// hide the add latency so that only the memory system limits the loop.
float SumPass(const float* data, size_t n) {
  float total = 0.0f;
#pragma omp parallel reduction(+ : total)
  {
    auto [begin, end] =
        ThreadShare(n, 64, omp_get_thread_num(), omp_get_num_threads());
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0,
           a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = begin; i < end; i += 64) {
      const float* p = data + i;
      a0 = _mm256_add_ps(a0, _mm256_load_ps(p));
      a1 = _mm256_add_ps(a1, _mm256_load_ps(p + 8));
      a2 = _mm256_add_ps(a2, _mm256_load_ps(p + 16));
      a3 = _mm256_add_ps(a3, _mm256_load_ps(p + 24));
      a4 = _mm256_add_ps(a4, _mm256_load_ps(p + 32));
      a5 = _mm256_add_ps(a5, _mm256_load_ps(p + 40));
      a6 = _mm256_add_ps(a6, _mm256_load_ps(p + 48));
      a7 = _mm256_add_ps(a7, _mm256_load_ps(p + 56));
    }
    __m256 s = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
        _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    for (float v : lanes) total += v;
  }
  return total;
}

// `iters` steps of 12 independent FMA chains. Zen 3 and recent Intel cores
// retire two 4-cycle-latency FMAs per cycle, so at least 8 chains are needed
// to keep both pipes busy; 12 leaves margin and still fits the 16 registers.
float FmaChains(long iters) {
  const __m256 a = _mm256_set1_ps(0.999999f);
  const __m256 b = _mm256_set1_ps(1e-7f);
  // Distinct starting values: identical chains would be merged by the
  // compiler into one.
  auto start = [](int i) { return _mm256_set1_ps(1.0f + 0.01f * i); };
  __m256 c0 = start(0), c1 = start(1), c2 = start(2), c3 = start(3),
         c4 = start(4), c5 = start(5), c6 = start(6), c7 = start(7),
         c8 = start(8), c9 = start(9), c10 = start(10), c11 = start(11);
  for (long i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b);
    c11 = _mm256_fmadd_ps(c11, a, b);
  }
  __m256 s = _mm256_add_ps(
      _mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
      _mm256_add_ps(
          _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)),
          _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11))));
  return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}

// Eight independent int8 dot-product chains: vpmaddubsw (32 u8 x s8
// products summed in pairs) then vpmaddwd against ones (int32 sums of 4),
// the two instructions every AVX2 int8 dot product needs. 32 multiply-adds
// per chain and iteration.
int Int8Chains(long iters) {
  const __m256i a = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i b[8], acc[8];
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm256_set1_epi8(static_cast<char>(i + 1));
    acc[i] = _mm256_setzero_si256();
  }
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      acc[i] = _mm256_add_epi32(
          acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b[i]), ones));
      // Keeps b[i] opaque, so the product is not hoisted out of the loop.
      asm("" : "+x"(b[i]));
    }
  }
  __m256i s = acc[0];
  for (int i = 1; i < 8; ++i) s = _mm256_add_epi32(s, acc[i]);
  return _mm256_extract_epi32(s, 0);
}

// The best rate over kRuns of `body` run on every OpenMP thread, in units
// of `ops_per_thread` per run (x 1e-9).
template <typename Body>
double BestParallelRate(double ops_per_thread, Body body) {
  body(true);  // Warm up: let clocks settle before timing.
  double best = 0.0;
  for (int run = 0; run < kRuns; ++run) {
    int threads = 1;
    double start = omp_get_wtime();
#pragma omp parallel
    {
#pragma omp single nowait
      threads = omp_get_num_threads();
      body(false);
    }
    double seconds = omp_get_wtime() - start;
    best = std::max(best, ops_per_thread * threads / seconds * 1e-9);
  }
  return best;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The L3 size as the kernel reports it (e.g. "32768K"), or "" when unknown.
std::string ReadL3Size() {
  for (int index = 0; index < 8; ++index) {
    std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    std::ifstream level(dir + "/level");
    int value = 0;
    if (!(level >> value)) break;
    if (value != 3) continue;
    std::ifstream size(dir + "/size");
    std::string text;
    if (size >> text) return text;
  }
  return "";
}

}  // namespace

double MeasureReadBandwidthGBs() {
  // 512 MiB: 16x a 32 MiB L3, so the cache cannot serve a measurable share.
  constexpr size_t kFloats = size_t(512) << 20 >> 2;
  FloatArray data = AllocateFloats(kFloats);
  // Each thread first-touches the share it will read, so on multi-socket
  // machines its pages land on its own memory node.
#pragma omp parallel
  {
    auto [begin, end] =
        ThreadShare(kFloats, 64, omp_get_thread_num(), omp_get_num_threads());
    for (size_t i = begin; i < end; ++i) data[i] = float(i & 1023) * 1e-3f;
  }
  double best = 0.0;
  for (int run = 0; run < kRuns; ++run) {
    double start = omp_get_wtime();
    g_sink = g_sink + SumPass(data.get(), kFloats);
    double seconds = omp_get_wtime() - start;
    best = std::max(best, kFloats * sizeof(float) / seconds * 1e-9);
  }
  return best;
}

double MeasureFmaPeakGflops() {
  constexpr long kIters = 20'000'000;
  // Flops per thread: iterations x 12 chains x 8 lanes x 2 (multiply + add).
  return BestParallelRate(double(kIters) * 12 * 8 * 2, [](bool warm_up) {
    const float r = FmaChains(warm_up ? kIters / 10 : kIters);
#pragma omp critical
    g_sink = g_sink + r;
  });
}

double MeasureInt8PeakGops() {
  constexpr long kIters = 20'000'000;
  // Ops per thread: iterations x 8 chains x 32 multiply-adds x 2.
  return BestParallelRate(double(kIters) * 8 * 32 * 2, [](bool warm_up) {
    const int r = Int8Chains(warm_up ? kIters / 10 : kIters);
#pragma omp critical
    g_sink = g_sink + float(r);
  });
}

std::string DescribeMachine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  int logical = 0;
  std::string physical_id;
  std::set<std::pair<std::string, std::string>> cores;
  while (std::getline(cpuinfo, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = Trim(line.substr(0, colon));
    std::string value = Trim(line.substr(colon + 1));
    if (key == "processor") {
      ++logical;
    } else if (key == "model name") {
      model = value;
    } else if (key == "physical id") {
      physical_id = value;
    } else if (key == "core id") {
      cores.emplace(physical_id, value);
    }
  }
  // Some virtual machines omit core ids; count logical CPUs as cores then.
  int physical = cores.empty() ? logical : int(cores.size());
  std::string text = model + ", " + std::to_string(physical) + " cores / " +
                     std::to_string(logical) + " threads";
  std::string l3 = ReadL3Size();
  if (!l3.empty()) text += ", L3 " + l3;
  text += ", " + std::to_string(omp_get_max_threads()) + " OpenMP threads";
  return text;
}

}  // namespace hydra::bench
