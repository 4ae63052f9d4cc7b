#include "worker/cpu/paged_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "worker/cpu/vector_math.h"

namespace hydra::cpu {
namespace {

// Dot products of q with four keys at once: the four horizontal reductions
// share one shuffle tree, which costs as much as a single one would.
__m128 Dot4(const float* q, const float* const* k, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[0] + i), a0);
    a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[1] + i), a1);
    a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[2] + i), a2);
    a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[3] + i), a3);
  }
  const __m256 h =
      _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  __m128 sums =
      _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  if (i < n) {
    alignas(16) float tail[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4; ++r) {
      for (int j = i; j < n; ++j) tail[r] += q[j] * k[r][j];
    }
    sums = _mm_add_ps(sums, _mm_load_ps(tail));
  }
  return sums;
}

float Dot(const float* q, const float* k, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), acc);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += q[i] * k[i];
  return sum;
}

// out[d0 : d0 + 8N] = sum_j p[j] * v[j][d0 : d0 + 8N], accumulated in N
// registers across all keys, so `out` is written once.
template <int N>
void WeightedSum(const float* p, const float* const* v, int ctx, int d0,
                 float* out) {
  __m256 acc[N];
  for (int r = 0; r < N; ++r) acc[r] = _mm256_setzero_ps();
  for (int j = 0; j < ctx; ++j) {
    const __m256 w = _mm256_set1_ps(p[j]);
    const float* vj = v[j] + d0;
    for (int r = 0; r < N; ++r) {
      acc[r] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 8 * r), acc[r]);
    }
  }
  for (int r = 0; r < N; ++r) _mm256_storeu_ps(out + d0 + 8 * r, acc[r]);
}

void WeightedSumAll(const float* p, const float* const* v, int ctx, int hd,
                    float* out) {
  int d = 0;
  for (; d + 64 <= hd; d += 64) WeightedSum<8>(p, v, ctx, d, out);
  switch ((hd - d) / 8) {
    case 7:
      WeightedSum<7>(p, v, ctx, d, out);
      break;
    case 6:
      WeightedSum<6>(p, v, ctx, d, out);
      break;
    case 5:
      WeightedSum<5>(p, v, ctx, d, out);
      break;
    case 4:
      WeightedSum<4>(p, v, ctx, d, out);
      break;
    case 3:
      WeightedSum<3>(p, v, ctx, d, out);
      break;
    case 2:
      WeightedSum<2>(p, v, ctx, d, out);
      break;
    case 1:
      WeightedSum<1>(p, v, ctx, d, out);
      break;
    default:
      break;
  }
  for (d += (hd - d) / 8 * 8; d < hd; ++d) {
    float sum = 0.0f;
    for (int j = 0; j < ctx; ++j) sum += p[j] * v[j][d];
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

}  // namespace

void WriteKv(const float* k, const float* v, int stride, int m,
             const int32_t* slots, const PagedKvLayer& cache) {
  const int row = cache.slot_floats();
  for (int t = 0; t < m; ++t) {
    const size_t dst = size_t(slots[t]) * row;
    std::memcpy(cache.k + dst, k + size_t(t) * stride, sizeof(float) * row);
    std::memcpy(cache.v + dst, v + size_t(t) * stride, sizeof(float) * row);
  }
}

void PagedAttention(const float* q, int q_stride, int m, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables, float* out) {
  const int hd = cache.head_dim;
  const int group = num_heads / cache.kv_heads;
  const int row = cache.slot_floats();
  const int bs = cache.block_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  int max_ctx = 0;
  long work = 0;
  for (int t = 0; t < m; ++t) {
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
    std::vector<float> scores(max_ctx + 4);
    std::vector<const float*> keys(max_ctx + 4), values(max_ctx + 4);
    auto attend = [&](int t, int h) {
      const int ctx = positions[t] + 1;
      const size_t kv_offset = size_t(h / group) * hd;
      const int32_t* table = block_tables[t];
      for (int j = 0, b = 0; j < ctx; ++b) {
        const size_t base = size_t(table[b]) * bs * row + kv_offset;
        for (int o = 0; o < bs && j < ctx; ++o, ++j) {
          keys[j] = cache.k + base + size_t(o) * row;
          values[j] = cache.v + base + size_t(o) * row;
        }
      }
      const float* qh = q + size_t(t) * q_stride + size_t(h) * hd;
      int j = 0;
      for (; j + 4 <= ctx; j += 4) {
        _mm_storeu_ps(&scores[j],
                      _mm_mul_ps(Dot4(qh, &keys[j], hd), _mm_set1_ps(scale)));
      }
      for (; j < ctx; ++j) scores[j] = Dot(qh, keys[j], hd) * scale;
      Softmax(scores.data(), ctx);
      WeightedSumAll(scores.data(), values.data(), ctx, hd,
                     out + size_t(t) * num_heads * hd + size_t(h) * hd);
    };
    if (split_heads) {
#pragma omp for collapse(2) schedule(dynamic, 1)
      for (int t = 0; t < m; ++t) {
        for (int h = 0; h < num_heads; ++h) attend(t, h);
      }
    } else {
#pragma omp for schedule(dynamic, 1)
      for (int t = 0; t < m; ++t) {
        for (int h = 0; h < num_heads; ++h) attend(t, h);
      }
    }
  }
}

}  // namespace hydra::cpu
