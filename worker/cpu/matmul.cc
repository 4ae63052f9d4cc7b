// GEMM against a PackedMatrix of floats (fp32, bf16 or f16 panels):
// y[m, n] = x[m, k] · Wᵀ (+ bias), accumulated in fp32. Half-precision panels
// are widened in registers as they are loaded: decode reads half the bytes,
// and the widening (two unpacks for bf16, two vcvtph2ps for f16) fits in the
// load ports' shadow. kInt8 matrices go to matmul_int8.cc.
//
// Blocking, from the registers out (GotoBLAS style, sized for AVX2 cores with
// a 32 KiB L1d and >= 512 KiB L2 per core):
//  * Micro-tile: up to 6 rows x one 16-column panel = 12 ymm accumulators.
//    Each k step loads two panel vectors, broadcasts 6 x values and issues 12
//    FMAs: 6 cycles on two FMA pipes against 8 loads, which the load ports
//    (2-3 per cycle) absorb, so the FMA pipes are the limit. 12 independent
//    chains also cover the 4-cycle FMA latency (8 would be the minimum).
//  * k block: a panel slice of at most kMaxKBlock steps (24 KiB) stays in L1
//    while every row block of a chunk passes over it.
//  * Row chunk: the x rows of one chunk (one k block wide) stay in L2 while a
//    thread's panels stream past them, so W is read once per chunk.
//  * Threads claim contiguous runs of (chunk, panel) tiles from a shared
//    counter, in order, one k block at a time; with one chunk (decode, small
//    batches) the panels stream past front to back exactly once. Claiming
//    rather than fixed shares matters when the server's other threads (gRPC,
//    the engine) take a core for a moment: a static share would make the
//    whole product wait for the preempted thread, where claiming lets the
//    others take over its tiles.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "worker/cpu/kernels.h"
#include "worker/cpu/matmul_int8.h"
#include "worker/cpu/number_formats.h"

namespace hydra::cpu {
namespace {

constexpr int kPanel = PackedMatrix::kPanel;
constexpr int kRowBlock = 6;
constexpr int kMaxKBlock = 384;
// k steps a tile prefetches ahead of its loads. A tile of several rows reads
// one panel in order with FMAs between loads, which leaves the memory system
// idle between misses: cold m=2..6 products ran at 9-13 GB/s against 19.5
// for the four-stream single-row path. Prefetching 8-16 KiB ahead restores
// the overlap (bf16 4864x896 m=5: 892 -> 551 us); prefetch past the panel's
// end is harmless, it never faults.
constexpr int kAhead = 256;
// Half of a 512 KiB L2, leaving room for the panels and y.
constexpr size_t kChunkBytes = size_t(256) << 10;
// Below this many multiply-adds a fork/join costs more than it saves.
constexpr double kMinParallelMacs = 1 << 17;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }
int NumPanels(int n) { return CeilDiv(n, kPanel); }

// All-ones lanes for the first `count` of 8 floats.
__m256i LaneMask(int count) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), iota);
}

// One row of a tile's 16 output columns, of which only `cols` exist (the
// last panel of a matrix whose n is not a multiple of 16). Masked loads and
// stores never touch the missing columns, so y needs no padding.
struct RowIo {
  int cols;
  __m256i mask_lo, mask_hi;

  explicit RowIo(int c)
      : cols(c), mask_lo(LaneMask(c)), mask_hi(LaneMask(c - 8)) {}

  void Load(const float* src, __m256& lo, __m256& hi) const {
    if (cols == kPanel) {
      lo = _mm256_loadu_ps(src);
      hi = _mm256_loadu_ps(src + 8);
    } else {
      lo = _mm256_maskload_ps(src, mask_lo);
      hi = _mm256_maskload_ps(src + 8, mask_hi);
    }
  }
  void Store(float* dst, __m256 lo, __m256 hi) const {
    if (cols == kPanel) {
      _mm256_storeu_ps(dst, lo);
      _mm256_storeu_ps(dst + 8, hi);
    } else {
      _mm256_maskstore_ps(dst, mask_lo, lo);
      _mm256_maskstore_ps(dst + 8, mask_hi, hi);
    }
  }
};

// One 16-column row of a panel as two fp32 vectors, columns 0-7 and 8-15.
inline void Load16(const float* p, __m256& lo, __m256& hi) {
  lo = _mm256_load_ps(p);
  hi = _mm256_load_ps(p + 8);
}
// BF16 is the top half of an fp32: interleaving zero words below each value
// widens it. The packer stored the lanes so that unpacklo/unpackhi (which
// work within 128-bit halves) come out in column order.
inline void Load16(const Bf16* p, __m256& lo, __m256& hi) {
  const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i zero = _mm256_setzero_si256();
  lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v));
  hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v));
}
inline void Load16(const F16* p, __m256& lo, __m256& hi) {
  lo = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
  hi = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p) + 1));
}

// Where a tile's accumulators start: from y (a later k block), from the bias
// (the first k block of a biased product) or from zero.
struct TileOut {
  float* y;
  int y_stride;
  const float* bias;  // Already offset to the panel's first column.
  bool accumulate;
  RowIo io;

  void Init(int r, __m256& lo, __m256& hi) const {
    if (accumulate) {
      io.Load(y + size_t(r) * y_stride, lo, hi);
    } else if (bias != nullptr) {
      io.Load(bias, lo, hi);
    } else {
      lo = hi = _mm256_setzero_ps();
    }
  }
};

// R rows (R <= kRowBlock) times one panel over kc k steps. `x` and `panel`
// already point at the k block's first step; `next` is where the weights
// read after these continue (the next panel's slice of the k block), which
// the last kAhead steps prefetch. Under k blocking that is not what follows
// the slice in memory: past the slice's end lies the same panel's next k
// block, which a later pass reads, by then evicted.
template <typename T, int R>
struct Tile {
  static void Run(const float* x, int x_stride, const T* panel, const T* next,
                  int kc, const TileOut& out);
};

template <typename T, int R>
void Tile<T, R>::Run(const float* x, int x_stride, const T* panel,
                     const T* next, int kc, const TileOut& out) {
  __m256 lo[R], hi[R];
  const float* xr[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    out.Init(r, lo[r], hi[r]);
    xr[r] = x + size_t(r) * x_stride;
  }
  for (int kk = 0; kk < kc; ++kk) {
    const int ahead = kk + kAhead;
    _mm_prefetch(reinterpret_cast<const char*>(
                     ahead < kc ? panel + size_t(ahead) * kPanel
                                : next + size_t(ahead - kc) * kPanel),
                 _MM_HINT_T0);
    __m256 w0, w1;
    Load16(panel + size_t(kk) * kPanel, w0, w1);
    // Pins the panel vectors in registers. Left alone, GCC folds them into
    // the FMAs as memory operands for R <= 4, which reloads them once per row
    // and makes the loop load-bound (12 loads per 8 FMAs at R = 4).
    asm("" : "+x"(w0), "+x"(w1));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xr[r] + kk);
      lo[r] = _mm256_fmadd_ps(xv, w0, lo[r]);
      hi[r] = _mm256_fmadd_ps(xv, w1, hi[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    out.io.Store(out.y + size_t(r) * out.y_stride, lo[r], hi[r]);
  }
}

// A single row against one panel has only two accumulator chains, which
// would leave the loop waiting on FMA latency. Splitting k into interleaved
// phases would fix that but sum in another order than the multi-row tiles,
// and then a sequence's logits would depend on what it was batched with. So
// a lone row takes kRowPanels panels at once instead: eight chains, each
// still summing k in order, bit for bit what Tile<T, R> computes for it.
constexpr int kRowPanels = 4;

template <typename T>
void RowPanels(const float* x, const T* panel, size_t panel_stride, int kc,
               const TileOut* out) {
  __m256 lo[kRowPanels], hi[kRowPanels];
#pragma GCC unroll 4
  for (int p = 0; p < kRowPanels; ++p) out[p].Init(0, lo[p], hi[p]);
  for (int kk = 0; kk < kc; ++kk) {
    const __m256 xv = _mm256_broadcast_ss(x + kk);
#pragma GCC unroll 4
    for (int p = 0; p < kRowPanels; ++p) {
      __m256 w0, w1;
      Load16(panel + p * panel_stride + size_t(kk) * kPanel, w0, w1);
      lo[p] = _mm256_fmadd_ps(xv, w0, lo[p]);
      hi[p] = _mm256_fmadd_ps(xv, w1, hi[p]);
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < kRowPanels; ++p) out[p].io.Store(out[p].y, lo[p], hi[p]);
}

template <typename T>
void TileRows(int rows, const float* x, int x_stride, const T* panel,
              const T* next, int kc, const TileOut& out) {
  switch (rows) {
    case 1:
      return Tile<T, 1>::Run(x, x_stride, panel, next, kc, out);
    case 2:
      return Tile<T, 2>::Run(x, x_stride, panel, next, kc, out);
    case 3:
      return Tile<T, 3>::Run(x, x_stride, panel, next, kc, out);
    case 4:
      return Tile<T, 4>::Run(x, x_stride, panel, next, kc, out);
    case 5:
      return Tile<T, 5>::Run(x, x_stride, panel, next, kc, out);
    case 6:
      return Tile<T, 6>::Run(x, x_stride, panel, next, kc, out);
  }
}

// The product's shape and how it is cut into blocks.
struct Plan {
  const float* x;
  int m, x_stride;
  const PackedMatrix* w;
  const float* bias;
  float* y;
  int y_stride;
  int k_block = 0;     // k steps per block (the last may be shorter)
  int chunk_rows = 0;  // rows per chunk (the last may be shorter)
  int chunks = 0;
  int panels = 0;
};

Plan MakePlan(const float* x, int m, int x_stride, const PackedMatrix& w,
              const float* bias, float* y, int y_stride, int threads) {
  Plan plan{.x = x,
            .m = m,
            .x_stride = x_stride,
            .w = &w,
            .bias = bias,
            .y = y,
            .y_stride = y_stride,
            .panels = NumPanels(w.rows())};
  const int k = w.cols();
  // k blocking only pays when a panel slice is reused by several row blocks;
  // a single row block streams each panel once, front to back.
  const int k_blocks = m > kRowBlock ? CeilDiv(k, kMaxKBlock) : 1;
  plan.k_block = CeilDiv(k, k_blocks);
  int max_rows = int(kChunkBytes / (size_t(plan.k_block) * sizeof(float)));
  max_rows = std::max(kRowBlock, max_rows / kRowBlock * kRowBlock);
  // Too few panels to occupy every thread twice over: cut rows finer as well.
  if (plan.panels < 2 * threads) {
    const int want_chunks = CeilDiv(2 * threads, plan.panels);
    const int rows = CeilDiv(CeilDiv(m, want_chunks), kRowBlock) * kRowBlock;
    max_rows = std::min(max_rows, rows);
  }
  // Equal chunks, so that equal shares of tiles are equal shares of work.
  plan.chunks = CeilDiv(m, max_rows);
  plan.chunk_rows = CeilDiv(m, plan.chunks);
  return plan;
}

// Rows [row0, row0 + rows) against panels [p0, p1) over k block [k0, k0 + kc).
template <typename T>
void RunTiles(const Plan& plan, int row0, int rows, int p0, int p1, int k0,
              int kc) {
  const PackedMatrix& w = *plan.w;
  // Near-equal row blocks (e.g. 8 rows as 4 + 4, not 6 + 2): a thin block has
  // too few accumulator chains to keep the FMA pipes busy.
  const int blocks = CeilDiv(rows, kRowBlock);
  const int base = rows / blocks, extra = rows % blocks;
  auto tile_out = [&](int p, int r) {
    const int col0 = p * kPanel;
    return TileOut{
        plan.y + size_t(r) * plan.y_stride + col0, plan.y_stride,
        (plan.bias != nullptr && k0 == 0) ? plan.bias + col0 : nullptr, k0 > 0,
        RowIo(std::min(kPanel, w.rows() - col0))};
  };
  int p = p0;
  if (rows == 1) {
    const int full_panels = w.rows() / kPanel;
    for (; p + kRowPanels <= std::min(p1, full_panels); p += kRowPanels) {
      static_assert(kRowPanels == 4);
      const TileOut outs[kRowPanels] = {
          tile_out(p, row0), tile_out(p + 1, row0), tile_out(p + 2, row0),
          tile_out(p + 3, row0)};
      RowPanels(plan.x + size_t(row0) * plan.x_stride + k0,
                w.panel<T>(p) + size_t(k0) * kPanel, size_t(w.cols()) * kPanel,
                kc, outs);
    }
  }
  for (; p < p1; ++p) {
    const int col0 = p * kPanel;
    const T* panel = w.panel<T>(p) + size_t(k0) * kPanel;
    const T* next = p + 1 < plan.panels
                        ? w.panel<T>(p + 1) + size_t(k0) * kPanel
                        : panel + size_t(kc) * kPanel;
    const TileOut out_proto = tile_out(p, 0);
    int r = row0;
    for (int b = 0; b < blocks; ++b) {
      const int block_rows = base + (b < extra ? 1 : 0);
      TileOut out = out_proto;
      out.y = plan.y + size_t(r) * plan.y_stride + col0;
      TileRows(block_rows, plan.x + size_t(r) * plan.x_stride + k0,
               plan.x_stride, panel, next, kc, out);
      r += block_rows;
    }
  }
}

// Tiles [begin, end) of the chunk-major (chunk, panel) order, over the k
// block [k0, k0 + kc).
template <typename T>
void RunRange(const Plan& plan, long begin, long end, int k0, int kc) {
  for (long tile = begin; tile < end;) {
    const int chunk = int(tile / plan.panels);
    const int p0 = int(tile % plan.panels);
    const int p1 = int(std::min<long>(plan.panels, p0 + (end - tile)));
    const int row0 = chunk * plan.chunk_rows;
    const int rows = std::min(plan.chunk_rows, plan.m - row0);
    RunTiles<T>(plan, row0, rows, p0, p1, k0, kc);
    tile += p1 - p0;
  }
}

int NumKBlocks(const Plan& plan) {
  return CeilDiv(plan.w->cols(), plan.k_block);
}

// Every tile over k block `kb`, claimed `grain` tiles at a time from `next`.
template <typename T>
void ClaimAndRun(const Plan& plan, int kb, long tiles, long grain,
                 std::atomic<long>& next) {
  const int k0 = kb * plan.k_block;
  const int kc = std::min(plan.k_block, plan.w->cols() - k0);
  for (long begin = next.fetch_add(grain, std::memory_order_relaxed);
       begin < tiles;
       begin = next.fetch_add(grain, std::memory_order_relaxed)) {
    RunRange<T>(plan, begin, std::min(tiles, begin + grain), k0, kc);
  }
}

void FillBias(int m, int n, const float* bias, float* y, int y_stride) {
  for (int i = 0; i < m; ++i) {
    float* row = y + size_t(i) * y_stride;
    if (bias != nullptr) {
      std::copy_n(bias, n, row);
    } else {
      std::fill_n(row, n, 0.0f);
    }
  }
}

template <typename T>
void MatMulFloat(const float* x, int m, int x_stride, const PackedMatrix& w,
                 const float* bias, float* y, int y_stride) {
  const int n = w.rows(), k = w.cols();
  const double macs = double(m) * n * k;
  const int threads = macs >= kMinParallelMacs ? omp_get_max_threads() : 1;
  const Plan plan = MakePlan(x, m, x_stride, w, bias, y, y_stride, threads);
  const long tiles = long(plan.chunks) * plan.panels;
  const int k_blocks = NumKBlocks(plan);
  // Not an if() clause: libgomp charges ~0.5 us even for a disabled region,
  // a tenth of a small decode matmul.
  if (threads == 1) {
    for (int kb = 0; kb < k_blocks; ++kb) {
      const int k0 = kb * plan.k_block;
      RunRange<T>(plan, 0, tiles, k0, std::min(plan.k_block, k - k0));
    }
    return;
  }
  // About 8 claims per thread per k block: few enough that the shared
  // counter costs nothing, enough to even out a preempted thread.
  const long grain = std::max(1L, tiles / (8L * threads));
  std::vector<std::atomic<long>> next(k_blocks);
  for (auto& n : next) n.store(0, std::memory_order_relaxed);
#pragma omp parallel num_threads(threads)
  {
    for (int kb = 0; kb < k_blocks; ++kb) {
      // A tile accumulates over k blocks, possibly on different threads:
      // the barrier orders block kb's writes before block kb + 1's.
      if (kb > 0) {
#pragma omp barrier
      }
      ClaimAndRun<T>(plan, kb, tiles, grain, next[kb]);
    }
  }
}

}  // namespace

void MatMul(const float* x, int m, int x_stride, const PackedMatrix& w,
            const float* bias, float* y, int y_stride) {
  const int n = w.rows(), k = w.cols();
  if (m <= 0 || n <= 0) return;
  if (k == 0) return FillBias(m, n, bias, y, y_stride);
  switch (w.type()) {
    case WeightType::kF32:
      return MatMulFloat<float>(x, m, x_stride, w, bias, y, y_stride);
    case WeightType::kBF16:
      return MatMulFloat<Bf16>(x, m, x_stride, w, bias, y, y_stride);
    case WeightType::kF16:
      return MatMulFloat<F16>(x, m, x_stride, w, bias, y, y_stride);
    case WeightType::kInt8:
      return MatMulInt8(x, m, x_stride, w, bias, y, y_stride);
  }
}

}  // namespace hydra::cpu
