#include "worker/cpu/paged_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <span>
#include <vector>

#include "worker/cpu/number_formats.h"
#include "worker/cpu/tiled_attention.h"
#include "worker/cpu/vector_math.h"

namespace hydra::cpu {
namespace {

// Dot products of q with four keys at once: the four horizontal reductions
// share one shuffle tree, which costs as much as a single one would.
template <typename T>
__m128 Dot4(const float* q, const T* const* k, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, Load8(k[0] + i), a0);
    a1 = _mm256_fmadd_ps(qv, Load8(k[1] + i), a1);
    a2 = _mm256_fmadd_ps(qv, Load8(k[2] + i), a2);
    a3 = _mm256_fmadd_ps(qv, Load8(k[3] + i), a3);
  }
  const __m256 h =
      _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  __m128 sums =
      _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  if (i < n) {
    alignas(16) float tail[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4; ++r) {
      for (int j = i; j < n; ++j) tail[r] += q[j] * ToFloat(k[r][j]);
    }
    sums = _mm_add_ps(sums, _mm_load_ps(tail));
  }
  return sums;
}

template <typename T>
float Dot(const float* q, const T* k, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(k + i), acc);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += q[i] * ToFloat(k[i]);
  return sum;
}

// out[d0 : d0 + 8N] = sum_j p[j] * v[j][d0 : d0 + 8N], accumulated in N
// registers across all keys, so `out` is written once.
template <int N, typename T>
void WeightedSum(const float* p, const T* const* v, int ctx, int d0,
                 float* out) {
  __m256 acc[N];
  for (int r = 0; r < N; ++r) acc[r] = _mm256_setzero_ps();
  for (int j = 0; j < ctx; ++j) {
    const __m256 w = _mm256_set1_ps(p[j]);
    const T* vj = v[j] + d0;
    for (int r = 0; r < N; ++r) {
      acc[r] = _mm256_fmadd_ps(w, Load8(vj + 8 * r), acc[r]);
    }
  }
  for (int r = 0; r < N; ++r) _mm256_storeu_ps(out + d0 + 8 * r, acc[r]);
}

template <typename T>
void WeightedSumAll(const float* p, const T* const* v, int ctx, int hd,
                    float* out) {
  int d = 0;
  for (; d + 64 <= hd; d += 64) WeightedSum<8, T>(p, v, ctx, d, out);
  switch ((hd - d) / 8) {
    case 7:
      WeightedSum<7, T>(p, v, ctx, d, out);
      break;
    case 6:
      WeightedSum<6, T>(p, v, ctx, d, out);
      break;
    case 5:
      WeightedSum<5, T>(p, v, ctx, d, out);
      break;
    case 4:
      WeightedSum<4, T>(p, v, ctx, d, out);
      break;
    case 3:
      WeightedSum<3, T>(p, v, ctx, d, out);
      break;
    case 2:
      WeightedSum<2, T>(p, v, ctx, d, out);
      break;
    case 1:
      WeightedSum<1, T>(p, v, ctx, d, out);
      break;
    default:
      break;
  }
  for (d += (hd - d) / 8 * 8; d < hd; ++d) {
    float sum = 0.0f;
    for (int j = 0; j < ctx; ++j) sum += p[j] * ToFloat(v[j][d]);
    out[d] = sum;
  }
}

// Softmax of scores[0:n] in place; returns nothing, normalizes to sum 1.
void Softmax(float* scores, int n) {
  float max_score = -INFINITY;
  for (int j = 0; j < n; ++j) max_score = std::max(max_score, scores[j]);
  const __m256 mv = _mm256_set1_ps(max_score);
  __m256 acc = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(scores + j), mv));
    _mm256_storeu_ps(scores + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = HorizontalSum(acc);
  for (; j < n; ++j) sum += (scores[j] = std::exp(scores[j] - max_score));
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8) {
    _mm256_storeu_ps(scores + j,
                     _mm256_mul_ps(_mm256_loadu_ps(scores + j), inv));
  }
  for (; j < n; ++j) scores[j] *= 1.0f / sum;
}

template <typename T>
void WriteRows(const float* src, int stride, int m, const int32_t* slots,
               int row, float* scales, int heads, int hd, void* dst_base) {
  T* dst = static_cast<T*>(dst_base);
  for (int t = 0; t < m; ++t) {
    const float* x = src + size_t(t) * stride;
    T* d = dst + size_t(slots[t]) * row;
    if constexpr (std::is_same_v<T, float>) {
      std::memcpy(d, x, sizeof(float) * row);
    } else if constexpr (std::is_same_v<T, int8_t>) {
      for (int h = 0; h < heads; ++h) {
        const float* xh = x + size_t(h) * hd;
        float amax = 0.0f;
        for (int i = 0; i < hd; ++i) amax = std::max(amax, std::fabs(xh[i]));
        scales[size_t(slots[t]) * heads + h] = amax / 127.0f;
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int i = 0; i < hd; ++i) {
          d[size_t(h) * hd + i] = static_cast<int8_t>(std::lrint(xh[i] * inv));
        }
      }
    } else {
      int i = 0;
      for (; i + 8 <= row; i += 8) Store8(_mm256_loadu_ps(x + i), d + i);
      for (; i < row; ++i) {
        if constexpr (std::is_same_v<T, Bf16>) {
          d[i] = ToBf16(x[i]);
        } else {
          d[i] = ToF16(x[i]);
        }
      }
    }
  }
}

// The per-token kernel, for the call's tokens listed in `tokens`.
template <typename T>
void Attention(const float* q, int q_stride, std::span<const int> tokens,
               int num_heads, const PagedKvLayer& cache,
               const int32_t* positions, const int32_t* const* block_tables,
               float* out) {
  const int hd = cache.head_dim;
  const int group = num_heads / cache.kv_heads;
  const int row = cache.slot_values();
  const int bs = cache.block_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const T* k_cache = static_cast<const T*>(cache.k);
  const T* v_cache = static_cast<const T*>(cache.v);
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  const int m = static_cast<int>(tokens.size());
  int max_ctx = 0;
  long work = 0;
  for (int t : tokens) {
    max_ctx = std::max(max_ctx, positions[t] + 1);
    work += long(positions[t] + 1) * num_heads * hd;
  }

  // One token's heads run on one thread, one after another: a token's K/V
  // rows are contiguous across heads, so a thread streams whole rows that
  // its L2 keeps for the next head. Only a handful of tokens (a lone decode)
  // spread their heads over threads instead.
  const bool split_heads = m < 8;
#pragma omp parallel if (work > 32768)
  {
    // Per thread: scores, and the address of each context token's K and V
    // row, resolved through the block table once per (token, head).
    std::vector<float> scores(max_ctx + 4), weights;
    std::vector<const T*> keys(max_ctx + 4), values(max_ctx + 4);
    std::vector<int32_t> slots(kScaled ? max_ctx : 0);
    if (kScaled) weights.resize(max_ctx + 4);
    auto attend = [&](int t, int h) {
      const int ctx = positions[t] + 1;
      const int kv_head = h / group;
      const size_t kv_offset = size_t(kv_head) * hd;
      const int32_t* table = block_tables[t];
      for (int j = 0, b = 0; j < ctx; ++b) {
        const size_t base = size_t(table[b]) * bs * row + kv_offset;
        for (int o = 0; o < bs && j < ctx; ++o, ++j) {
          keys[j] = k_cache + base + size_t(o) * row;
          values[j] = v_cache + base + size_t(o) * row;
          if constexpr (kScaled) slots[j] = table[b] * bs + o;
        }
      }
      const float* qh = q + size_t(t) * q_stride + size_t(h) * hd;
      int j = 0;
      for (; j + 4 <= ctx; j += 4) {
        _mm_storeu_ps(&scores[j],
                      _mm_mul_ps(Dot4(qh, &keys[j], hd), _mm_set1_ps(scale)));
      }
      for (; j < ctx; ++j) scores[j] = Dot(qh, keys[j], hd) * scale;
      const float* p = scores.data();
      if constexpr (kScaled) {
        for (j = 0; j < ctx; ++j) {
          scores[j] *=
              cache.k_scale[size_t(slots[j]) * cache.kv_heads + kv_head];
        }
        Softmax(scores.data(), ctx);
        for (j = 0; j < ctx; ++j) {
          weights[j] =
              scores[j] *
              cache.v_scale[size_t(slots[j]) * cache.kv_heads + kv_head];
        }
        p = weights.data();
      } else {
        Softmax(scores.data(), ctx);
      }
      WeightedSumAll(p, values.data(), ctx, hd,
                     out + size_t(t) * num_heads * hd + size_t(h) * hd);
    };
    if (split_heads) {
#pragma omp for collapse(2) schedule(dynamic, 1)
      for (int i = 0; i < m; ++i) {
        for (int h = 0; h < num_heads; ++h) attend(tokens[i], h);
      }
    } else {
#pragma omp for schedule(dynamic, 1)
      for (int i = 0; i < m; ++i) {
        for (int h = 0; h < num_heads; ++h) attend(tokens[i], h);
      }
    }
  }
}

// Runs of at least this many tokens take the tiled kernel. Below it a tile
// would be mostly padding (a 2-token run of a group-1 model fills 2 of 8
// vector lanes), and decodes are single tokens anyway.
constexpr int kMinTiledRun = 4;

// Splits the call's tokens into runs of one sequence at consecutive
// positions (a prefill chunk), which go to `runs`, and the tokens of
// shorter runs, which go to `single`.
void SplitTokens(int m, const int32_t* positions,
                 const int32_t* const* block_tables,
                 std::vector<QueryRun>& runs, std::vector<int>& single) {
  for (int t = 0; t < m;) {
    int end = t + 1;
    while (end < m && block_tables[end] == block_tables[t] &&
           positions[end] == positions[end - 1] + 1) {
      ++end;
    }
    if (end - t >= kMinTiledRun) {
      runs.push_back({t, end - t});
    } else {
      for (int i = t; i < end; ++i) single.push_back(i);
    }
    t = end;
  }
}

}  // namespace

std::string_view KvTypeName(KvType type) {
  switch (type) {
    case KvType::kF32:
      return "fp32";
    case KvType::kBF16:
      return "bf16";
    case KvType::kF16:
      return "f16";
    case KvType::kInt8:
      return "int8";
  }
  return "?";
}

size_t KvBytesPerHead(KvType type, int head_dim) {
  switch (type) {
    case KvType::kF32:
      return size_t(4) * head_dim;
    case KvType::kBF16:
    case KvType::kF16:
      return size_t(2) * head_dim;
    case KvType::kInt8:
      return size_t(head_dim) + sizeof(float);
  }
  return 0;
}

void WriteKv(const float* k, const float* v, int stride, int m,
             const int32_t* slots, const PagedKvLayer& cache) {
  const int row = cache.slot_values();
  WithElementType(cache.type, [&](auto tag) {
    using T = decltype(tag);
    WriteRows<T>(k, stride, m, slots, row, cache.k_scale, cache.kv_heads,
                 cache.head_dim, cache.k);
    WriteRows<T>(v, stride, m, slots, row, cache.v_scale, cache.kv_heads,
                 cache.head_dim, cache.v);
  });
}

void PagedAttention(const float* q, int q_stride, int m, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables, float* out) {
  std::vector<QueryRun> runs;
  std::vector<int> single;
  SplitTokens(m, positions, block_tables, runs, single);
  WithElementType(cache.type, [&](auto tag) {
    using T = decltype(tag);
    if (!runs.empty()) {
      TiledAttention<T>(q, q_stride, num_heads, cache, positions, block_tables,
                        runs, out);
    }
    if (!single.empty()) {
      Attention<T>(q, q_stride, single, num_heads, cache, positions,
                   block_tables, out);
    }
  });
}

void PerTokenPagedAttention(const float* q, int q_stride, int m, int num_heads,
                            const PagedKvLayer& cache, const int32_t* positions,
                            const int32_t* const* block_tables, float* out) {
  std::vector<int> tokens(m);
  std::iota(tokens.begin(), tokens.end(), 0);
  WithElementType(cache.type, [&](auto tag) {
    Attention<decltype(tag)>(q, q_stride, tokens, num_heads, cache, positions,
                             block_tables, out);
  });
}

}  // namespace hydra::cpu
