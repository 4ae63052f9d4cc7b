// y[m, n] = x[m, k] · Wᵀ for int8 weights (layout in kernels.h).
//
// Per block of 32 k steps, a (row, column) pair costs: vpsignb to move x's
// signs onto w (maddubs needs one unsigned operand, so it multiplies |x| by
// sign(x)·w; |products| <= 127·127·2 fits its int16 without saturating),
// vpmaddubsw, vpmaddwd against ones (int32 sums of 4), a conversion and one
// FMA by the two blocks' scale product. A tile holds up to kRows x-rows
// against one 4-row weight panel: 8 accumulators, the panel's 4 vectors
// loaded once per block for both rows.
//
// Threads claim panels from a shared counter (see matmul.cc for why); every
// thread sweeps all x rows over its panel, so the weights are read from
// memory once and the quantised x (m * k bytes) stays in L2.
#include "worker/cpu/matmul_int8.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "worker/cpu/vector_math.h"

namespace hydra::cpu {
namespace {

constexpr int kPanel = PackedMatrix::kInt8Panel;
constexpr int kBlock = PackedMatrix::kInt8Block;
constexpr int kRows = 2;
// Below this many multiply-adds a fork/join costs more than it saves.
constexpr double kMinParallelMacs = 1 << 17;

// x quantised: per row, k_blocks blocks of 32 int8 (zero padded past k) and
// one scale per block.
struct QuantizedRows {
  std::vector<int8_t> q;
  std::vector<float> scale;
  int k_blocks = 0;
  const int8_t* row(int i) const {
    return q.data() + size_t(i) * k_blocks * kBlock;
  }
  const float* scales(int i) const {
    return scale.data() + size_t(i) * k_blocks;
  }
};

void QuantizeRow(const float* x, int k, int k_blocks, int8_t* q, float* s) {
  for (int b = 0; b < k_blocks; ++b) {
    const int k0 = b * kBlock, n = std::min(kBlock, k - k0);
    float block[kBlock] = {};
    std::copy_n(x + k0, n, block);
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < kBlock; i += 8) {
      amax = _mm256_max_ps(
          amax, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(block + i)));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax),
                           _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float max_abs = _mm_cvtss_f32(m4);
    s[b] = max_abs / 127.0f;
    const __m256 inv = _mm256_set1_ps(max_abs > 0.0f ? 127.0f / max_abs : 0.0f);
    __m256i i32[4];
    for (int i = 0; i < 4; ++i) {
      i32[i] = _mm256_cvtps_epi32(
          _mm256_mul_ps(_mm256_loadu_ps(block + 8 * i), inv));
    }
    // Pack 32 int32 -> 32 int8; the packs interleave 128-bit halves, which
    // the final permute puts back in order.
    const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
    const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
    __m256i i8 = _mm256_packs_epi16(i16a, i16b);
    i8 = _mm256_permutevar8x32_epi32(i8,
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + size_t(b) * kBlock), i8);
  }
}

void Quantize(const float* x, int m, int x_stride, int k, int k_blocks,
              QuantizedRows& out) {
  out.k_blocks = k_blocks;
  out.q.resize(size_t(m) * k_blocks * kBlock);
  out.scale.resize(size_t(m) * k_blocks);
#pragma omp parallel for schedule(static) if (size_t(m) * k > (1 << 16))
  for (int i = 0; i < m; ++i) {
    QuantizeRow(x + size_t(i) * x_stride, k, k_blocks,
                out.q.data() + size_t(i) * k_blocks * kBlock,
                out.scale.data() + size_t(i) * k_blocks);
  }
}

// Four dot products' partial sums -> their four totals.
__m128 Reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h =
      _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// R (<= kRows) rows of x against panel p; `cols` of its 4 rows exist.
template <int R>
void Tile(const QuantizedRows& x, int row0, const PackedMatrix& w, int p,
          int cols, const float* bias, float* y, int y_stride) {
  const int kb = w.k_blocks();
  const int8_t* wq = w.int8_panel(p);
  const float* ws = w.int8_scales(p);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][kPanel];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < kPanel; ++j) acc[r][j] = _mm256_setzero_ps();
  }
  for (int b = 0; b < kb; ++b) {
    __m256i wv[kPanel];
    for (int j = 0; j < kPanel; ++j) {
      wv[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(
          wq + (size_t(b) * kPanel + j) * kBlock));
    }
    const __m128 w_scales = _mm_load_ps(ws + size_t(b) * kPanel);
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
          x.row(row0 + r) + size_t(b) * kBlock));
      const __m256i ax = _mm256_sign_epi8(xv, xv);
      const __m128 s4 =
          _mm_mul_ps(w_scales, _mm_set1_ps(x.scales(row0 + r)[b]));
#pragma GCC unroll 4
      for (int j = 0; j < kPanel; ++j) {
        const __m256i prod16 =
            _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv[j], xv));
        const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod16, ones));
        const __m256 scale = _mm256_broadcastss_ps(
            _mm_castsi128_ps(_mm_srli_si128(_mm_castps_si128(s4), 4 * j)));
        acc[r][j] = _mm256_fmadd_ps(sums, scale, acc[r][j]);
      }
    }
  }
  const int col0 = p * kPanel;
  for (int r = 0; r < R; ++r) {
    __m128 out = Reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, out);
    float* yr = y + size_t(row0 + r) * y_stride + col0;
    for (int j = 0; j < cols; ++j) {
      yr[j] = lanes[j] + (bias != nullptr ? bias[col0 + j] : 0.0f);
    }
  }
}

void RunPanel(const QuantizedRows& x, int m, const PackedMatrix& w, int p,
              const float* bias, float* y, int y_stride) {
  const int cols = std::min(kPanel, w.rows() - p * kPanel);
  int r = 0;
  for (; r + kRows <= m; r += kRows) {
    Tile<kRows>(x, r, w, p, cols, bias, y, y_stride);
  }
  if (r < m) Tile<1>(x, r, w, p, cols, bias, y, y_stride);
}

}  // namespace

void MatMulInt8(const float* x, int m, int x_stride, const PackedMatrix& w,
                const float* bias, float* y, int y_stride) {
  // One buffer per calling thread, reused: no allocation per product.
  // OpenMP's threads must share this thread's buffer, not name their own
  // thread_local copies: hence the reference.
  thread_local QuantizedRows buffer;
  QuantizedRows& quantized = buffer;
  Quantize(x, m, x_stride, w.cols(), w.k_blocks(), quantized);
  const int panels = w.num_panels();
  const double macs = double(m) * w.rows() * w.cols();
  const int threads = macs >= kMinParallelMacs ? omp_get_max_threads() : 1;
  if (threads == 1) {
    for (int p = 0; p < panels; ++p)
      RunPanel(quantized, m, w, p, bias, y, y_stride);
    return;
  }
  const int grain = std::max(1, panels / (8 * threads));
  std::atomic<int> next{0};
#pragma omp parallel num_threads(threads)
  {
    for (int begin = next.fetch_add(grain, std::memory_order_relaxed);
         begin < panels;
         begin = next.fetch_add(grain, std::memory_order_relaxed)) {
      const int end = std::min(panels, begin + grain);
      for (int p = begin; p < end; ++p) {
        RunPanel(quantized, m, w, p, bias, y, y_stride);
      }
    }
  }
}

}  // namespace hydra::cpu
