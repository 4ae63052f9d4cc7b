#include "worker/cpu/tiled_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "worker/cpu/number_formats.h"
#include "worker/cpu/vector_math.h"

namespace hydra::cpu {
namespace {

// Keys per KV tile, independent of the cache's block size (a tile may span
// blocks, or a block several tiles), so block size 1 costs no more than 32.
// A tile's fp32 K and V (2 * 32 * head_dim floats, 16 KB at head_dim 64)
// and scores stay in L1 while the products run.
constexpr int kKeys = 32;
// Query rows (tile tokens * group) per work unit, at most. Each K/V row
// packed to fp32 serves this many rows; 72 rows keep the accumulator and
// queries (2 * 72 * head_dim floats, 36 KB at head_dim 64) in L2, leave
// enough units to share out, and are three whole 24-row register blocks
// (Qwen2.5's group of 7 takes 10 tokens, Llama 3.2's group of 4 takes 18).
constexpr int kTargetRows = 72;

int RoundUp8(int n) { return (n + 7) / 8 * 8; }

// The call's arguments, shared by every work unit.
struct Problem {
  const float* q;
  int q_stride;
  int num_heads;
  const PagedKvLayer* cache;
  const int32_t* positions;
  const int32_t* const* block_tables;
  float* out;
  int group;
  int head_dim;
};

// A work unit: `count` consecutive tokens from `first`, with the `group`
// query heads of one KV head.
struct Unit {
  int first;
  int count;
  int kv_head;
};

// Per-thread buffers. Query rows are the fastest index of every tile-sized
// buffer, so the softmax statistics, the masking and both products are
// vectorised over query rows with no horizontal reductions; the query rows
// are padded to a multiple of 8 (`rows` below is that padded count).
struct Scratch {
  Scratch(int rows, int hd)
      : qt(size_t(hd) * rows),
        ot(size_t(hd) * rows),
        st(size_t(kKeys) * rows),
        kf(size_t(kKeys) * hd),
        vf(size_t(kKeys) * hd),
        m(rows),
        l(rows),
        corr(rows),
        row_pos(rows) {}
  std::vector<float> qt;       // [hd][rows]: queries, pre-scaled by 1/sqrt(hd)
  std::vector<float> ot;       // [hd][rows]: unnormalised output
  std::vector<float> st;       // [kKeys][rows]: scores, then probabilities
  std::vector<float> kf;       // [kKeys][hd]: the KV tile's keys in fp32
  std::vector<float> vf;       // [kKeys][hd]: and values
  std::vector<float> m;        // running max score per row
  std::vector<float> l;        // running sum of exp(score - m) per row
  std::vector<float> corr;     // exp(old m - new m) of the last KV tile
  std::vector<float> row_pos;  // each row's position (exact below 2^24)
};

// c[i][8v .. 8v+8) for i < I, v < V, 8 query rows per vector:
//   c = (kAccumulate ? c * c_scale : 0) + sum_k a[i*a_is + k*a_ks] * b[k][.]
// One register-blocked shape serves both products: the scores (i = key,
// k = dimension) and the output (i = dimension, k = key).
template <int I, int V, bool kAccumulate>
void MicroKernel(const float* a, int a_is, int a_ks, const float* b, int ld,
                 int kn, float* c, const float* c_scale) {
  // Every loop over I and V fully unrolled, or GCC 12 keeps acc in memory
  // and stores all of it on every iteration (half the speed).
  __m256 acc[I * V];
#pragma GCC unroll 4
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      if constexpr (kAccumulate) {
        acc[i * V + v] =
            _mm256_mul_ps(_mm256_loadu_ps(c + size_t(i) * ld + 8 * v),
                          _mm256_loadu_ps(c_scale + 8 * v));
      } else {
        acc[i * V + v] = _mm256_setzero_ps();
      }
    }
  }
  for (int k = 0; k < kn; ++k) {
    __m256 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      bv[v] = _mm256_loadu_ps(b + size_t(k) * ld + 8 * v);
      // Keeps bv in a register: folded into each FMA as a memory operand,
      // it would be loaded I times, and the loads, not the FMAs, would set
      // the pace.
      asm("" : "+x"(bv[v]));
    }
#pragma GCC unroll 4
    for (int i = 0; i < I; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * a_is + k * a_ks);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[i * V + v] = _mm256_fmadd_ps(av, bv[v], acc[i * V + v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      _mm256_storeu_ps(c + size_t(i) * ld + 8 * v, acc[i * V + v]);
    }
  }
}

// MicroKernel<*, V> down all `ni` rows of c, for one strip of 8V query
// rows (ld floats apart).
template <int V, bool kAccumulate>
void Strip(const float* a, int a_is, int a_ks, const float* b, int ld, int kn,
           int ni, float* c, const float* c_scale) {
  int i = 0;
  for (; i + 4 <= ni; i += 4) {
    MicroKernel<4, V, kAccumulate>(a + i * a_is, a_is, a_ks, b, ld, kn,
                                   c + size_t(i) * ld, c_scale);
  }
  const float* ai = a + i * a_is;
  float* ci = c + size_t(i) * ld;
  switch (ni - i) {
    case 3:
      MicroKernel<3, V, kAccumulate>(ai, a_is, a_ks, b, ld, kn, ci, c_scale);
      break;
    case 2:
      MicroKernel<2, V, kAccumulate>(ai, a_is, a_ks, b, ld, kn, ci, c_scale);
      break;
    case 1:
      MicroKernel<1, V, kAccumulate>(ai, a_is, a_ks, b, ld, kn, ci, c_scale);
      break;
    default:
      break;
  }
}

// c[ni][rows] = (kAccumulate ? c * c_scale : 0) + A (ni x kn) * b (kn x
// rows), A's element (i, k) at a[i * a_is + k * a_ks]. Strips of query rows
// are the outer loop, so a strip of b and c stays in L1 while all of A (a
// KV tile, 8 KB) goes by; the whole of b would not fit.
template <bool kAccumulate>
void Product(const float* a, int a_is, int a_ks, const float* b, int rows,
             int kn, int ni, float* c, const float* c_scale) {
  auto scale = [&](int r) { return kAccumulate ? c_scale + r : nullptr; };
  int r = 0;
  for (; r + 24 <= rows; r += 24) {
    Strip<3, kAccumulate>(a, a_is, a_ks, b + r, rows, kn, ni, c + r, scale(r));
  }
  if (rows - r == 16) {
    Strip<2, kAccumulate>(a, a_is, a_ks, b + r, rows, kn, ni, c + r, scale(r));
  } else if (rows - r == 8) {
    Strip<1, kAccumulate>(a, a_is, a_ks, b + r, rows, kn, ni, c + r, scale(r));
  }
}

// dst[0:n] = src[0:n] * scale in fp32 (the scale is int8's; 1 otherwise).
template <typename T>
void ConvertRow(const T* src, int n, float scale, float* dst) {
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  const __m256 sv = _mm256_set1_ps(scale);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = Load8(src + i);
    _mm256_storeu_ps(dst + i, kScaled ? _mm256_mul_ps(x, sv) : x);
  }
  for (; i < n; ++i) dst[i] = ToFloat(src[i]) * scale;
}

// Keys and values [kv0, kv0 + n) of `kv_head` as fp32 rows of kf / vf.
// int8's per-token scales are folded in here, once per K/V row, rather than
// into every score and probability. Rows n..kKeys are zeroed: padded keys
// are masked out, and a zero row keeps stale NaNs out of 0 * v.
template <typename T>
void PackKv(const PagedKvLayer& cache, const int32_t* table, int kv_head,
            int kv0, int n, Scratch& s) {
  const int hd = cache.head_dim;
  const int bs = cache.block_size;
  const size_t row = cache.slot_values();
  const T* k_cache = static_cast<const T*>(cache.k);
  const T* v_cache = static_cast<const T*>(cache.v);
  int block = kv0 / bs, offset = kv0 % bs;
  for (int j = 0; j < n; ++j) {
    const size_t slot = size_t(table[block]) * bs + offset;
    const size_t at = slot * row + size_t(kv_head) * hd;
    float k_scale = 1.0f, v_scale = 1.0f;
    if constexpr (std::is_same_v<T, int8_t>) {
      k_scale = cache.k_scale[slot * cache.kv_heads + kv_head];
      v_scale = cache.v_scale[slot * cache.kv_heads + kv_head];
    }
    ConvertRow(k_cache + at, hd, k_scale, s.kf.data() + size_t(j) * hd);
    ConvertRow(v_cache + at, hd, v_scale, s.vf.data() + size_t(j) * hd);
    if (++offset == bs) offset = 0, ++block;
  }
  std::fill(s.kf.begin() + size_t(n) * hd, s.kf.end(), 0.0f);
  std::fill(s.vf.begin() + size_t(n) * hd, s.vf.end(), 0.0f);
}

// Asks for the K/V rows of keys [kv0, kv0 + n) while the current tile is
// computed: consecutive keys' rows are a slot apart, in blocks anywhere in
// the pool, which is more than the hardware prefetcher follows.
template <typename T>
void PrefetchKv(const PagedKvLayer& cache, const int32_t* table, int kv_head,
                int kv0, int n) {
  const int bs = cache.block_size;
  const size_t row = cache.slot_values();
  const size_t bytes = sizeof(T) * cache.head_dim;
  const char* k_cache = static_cast<const char*>(cache.k);
  const char* v_cache = static_cast<const char*>(cache.v);
  int block = kv0 / bs, offset = kv0 % bs;
  for (int j = 0; j < n; ++j) {
    const size_t slot = size_t(table[block]) * bs + offset;
    const size_t at =
        sizeof(T) * (slot * row + size_t(kv_head) * cache.head_dim);
    for (size_t b = 0; b < bytes; b += 64) {
      _mm_prefetch(k_cache + at + b, _MM_HINT_T0);
      _mm_prefetch(v_cache + at + b, _MM_HINT_T0);
    }
    if (++offset == bs) offset = 0, ++block;
  }
}

// Turns one KV tile's scores (st) into probabilities against the updated
// running max, adds them to the running sums, and leaves in corr the factor
// the output accumulated so far must shrink by. With `masked`, key kv0 + j
// counts only for rows at or after its position.
void OnlineSoftmax(int rows, int kv0, bool masked, Scratch& s) {
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
  for (int r = 0; r < rows; r += 8) {
    const __m256 pos = _mm256_loadu_ps(&s.row_pos[r]);
    auto valid = [&](int j) {
      return _mm256_cmp_ps(_mm256_set1_ps(float(kv0 + j)), pos, _CMP_LE_OQ);
    };
    float* col = s.st.data() + r;
    const __m256 m_old = _mm256_loadu_ps(&s.m[r]);
    __m256 m_new = m_old;
    for (int j = 0; j < kKeys; ++j) {
      __m256 x = _mm256_loadu_ps(col + size_t(j) * rows);
      if (masked) x = _mm256_blendv_ps(minus_inf, x, valid(j));
      m_new = _mm256_max_ps(m_new, x);
    }
    // Every row sees key 0 in the first tile, so m_new is finite and
    // m_old = -inf (first tile) gives corr = 0, not NaN.
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < kKeys; ++j) {
      float* x = col + size_t(j) * rows;
      __m256 p = Exp(_mm256_sub_ps(_mm256_loadu_ps(x), m_new));
      // Exp clamps its input, so a masked key would still get ~1e-38.
      if (masked) p = _mm256_and_ps(p, valid(j));
      _mm256_storeu_ps(x, p);
      sum = _mm256_add_ps(sum, p);
    }
    const __m256 corr = Exp(_mm256_sub_ps(m_old, m_new));
    _mm256_storeu_ps(&s.corr[r], corr);
    _mm256_storeu_ps(&s.m[r], m_new);
    _mm256_storeu_ps(&s.l[r],
                     _mm256_fmadd_ps(_mm256_loadu_ps(&s.l[r]), corr, sum));
  }
}

// Row r = token t * group + head g of the unit. Fills qt and row_pos
// (padding rows copy the last token's position, so they never see an
// all-masked tile) and resets the running state.
void LoadQueries(const Problem& p, const Unit& u, int rows, Scratch& s) {
  const int hd = p.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::fill(s.qt.begin(), s.qt.begin() + size_t(hd) * rows, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const int t = std::min(r / p.group, u.count - 1);
    s.row_pos[r] = static_cast<float>(p.positions[u.first] + t);
    if (r >= u.count * p.group) continue;
    const int h = u.kv_head * p.group + r % p.group;
    const float* qr = p.q + size_t(u.first + t) * p.q_stride + size_t(h) * hd;
    for (int d = 0; d < hd; ++d) s.qt[size_t(d) * rows + r] = qr[d] * scale;
  }
  std::fill(s.ot.begin(), s.ot.begin() + size_t(hd) * rows, 0.0f);
  std::fill(s.m.begin(), s.m.begin() + rows, -INFINITY);
  std::fill(s.l.begin(), s.l.begin() + rows, 0.0f);
}

void StoreOutput(const Problem& p, const Unit& u, int rows, const Scratch& s) {
  const int hd = p.head_dim;
  for (int r = 0; r < u.count * p.group; ++r) {
    const int t = r / p.group;
    const int h = u.kv_head * p.group + r % p.group;
    float* dst = p.out + (size_t(u.first + t) * p.num_heads + size_t(h)) * hd;
    const float inv = 1.0f / s.l[r];
    for (int d = 0; d < hd; ++d) dst[d] = s.ot[size_t(d) * rows + r] * inv;
  }
}

// One unit: its rows walk the context [0, last position] one KV tile at a
// time, scores -> online softmax -> output, never holding more than a tile.
template <typename T>
void AttendUnit(const Problem& p, const Unit& u, Scratch& s) {
  const int hd = p.head_dim;
  const int rows = RoundUp8(u.count * p.group);
  const int first_pos = p.positions[u.first];
  const int last_pos = first_pos + u.count - 1;
  LoadQueries(p, u, rows, s);
  const int32_t* table = p.block_tables[u.first];
  for (int kv0 = 0; kv0 <= last_pos; kv0 += kKeys) {
    const int n = std::min(kKeys, last_pos + 1 - kv0);
    PackKv<T>(*p.cache, table, u.kv_head, kv0, n, s);
    if (kv0 + kKeys <= last_pos) {
      PrefetchKv<T>(*p.cache, table, u.kv_head, kv0 + kKeys,
                    std::min(kKeys, last_pos + 1 - kv0 - kKeys));
    }
    // st[j][r] = sum_d kf[j][d] * qt[d][r]
    Product<false>(s.kf.data(), hd, 1, s.qt.data(), rows, hd, kKeys,
                   s.st.data(), nullptr);
    // Only tiles reaching past the first row's position need the causal
    // mask (the last, padded tile always does).
    OnlineSoftmax(rows, kv0, kv0 + kKeys - 1 > first_pos, s);
    // ot[d][r] = ot[d][r] * corr[r] + sum_j vf[j][d] * st[j][r]
    Product<true>(s.vf.data(), 1, hd, s.st.data(), rows, kKeys, hd, s.ot.data(),
                  s.corr.data());
  }
  StoreOutput(p, u, rows, s);
}

// Tiles of at most `tile_tokens` tokens per run, times the KV heads, the
// costliest (latest positions) first so the dynamic schedule ends on short
// units.
std::vector<Unit> PlanUnits(std::span<const QueryRun> runs, int tile_tokens,
                            int kv_heads, const int32_t* positions) {
  std::vector<Unit> units;
  for (const QueryRun& run : runs) {
    for (int t = 0; t < run.count; t += tile_tokens) {
      const int count = std::min(tile_tokens, run.count - t);
      for (int h = 0; h < kv_heads; ++h) {
        units.push_back({run.first + t, count, h});
      }
    }
  }
  std::stable_sort(
      units.begin(), units.end(), [&](const Unit& a, const Unit& b) {
        return positions[a.first] + a.count > positions[b.first] + b.count;
      });
  return units;
}

}  // namespace

template <typename T>
void TiledAttention(const float* q, int q_stride, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables,
                    std::span<const QueryRun> runs, float* out) {
  const int group = num_heads / cache.kv_heads;
  const int tile_tokens = std::max(1, kTargetRows / group);
  const std::vector<Unit> units =
      PlanUnits(runs, tile_tokens, cache.kv_heads, positions);
  const Problem problem{q,      q_stride,  num_heads,
                        &cache, positions, block_tables,
                        out,    group,     cache.head_dim};
  const int max_rows = RoundUp8(tile_tokens * group);
  const int n = static_cast<int>(units.size());
#pragma omp parallel if (n > 1)
  {
    Scratch scratch(max_rows, cache.head_dim);
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < n; ++i) AttendUnit<T>(problem, units[i], scratch);
  }
}

template void TiledAttention<float>(const float*, int, int, const PagedKvLayer&,
                                    const int32_t*, const int32_t* const*,
                                    std::span<const QueryRun>, float*);
template void TiledAttention<Bf16>(const float*, int, int, const PagedKvLayer&,
                                   const int32_t*, const int32_t* const*,
                                   std::span<const QueryRun>, float*);
template void TiledAttention<F16>(const float*, int, int, const PagedKvLayer&,
                                  const int32_t*, const int32_t* const*,
                                  std::span<const QueryRun>, float*);
template void TiledAttention<int8_t>(const float*, int, int,
                                     const PagedKvLayer&, const int32_t*,
                                     const int32_t* const*,
                                     std::span<const QueryRun>, float*);

}  // namespace hydra::cpu
