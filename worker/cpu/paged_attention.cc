#include "worker/cpu/paged_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace hydra::cpu {
namespace {

float Dot(const float* a, const float* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float sum = _mm_cvtss_f32(s);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// out[0:n] += w * v[0:n]
void Axpy(float w, const float* v, float* out, int n) {
  const __m256 wv = _mm256_set1_ps(w);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + i),
                                              _mm256_loadu_ps(out + i)));
  }
  for (; i < n; ++i) out[i] += w * v[i];
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
  for (int t = 0; t < m; ++t) max_ctx = std::max(max_ctx, positions[t] + 1);
  const long work = long(m) * num_heads * max_ctx;

#pragma omp parallel if (work > 4096)
  {
    std::vector<float> scores(max_ctx);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int t = 0; t < m; ++t) {
      for (int h = 0; h < num_heads; ++h) {
        const float* qh = q + size_t(t) * q_stride + size_t(h) * hd;
        const int kv_offset = (h / group) * hd;
        const int ctx = positions[t] + 1;
        const int32_t* table = block_tables[t];
        float max_score = -INFINITY;
        for (int j = 0; j < ctx; ++j) {
          const size_t slot = size_t(table[j / bs]) * bs + j % bs;
          scores[j] = Dot(qh, cache.k + slot * row + kv_offset, hd) * scale;
          max_score = std::max(max_score, scores[j]);
        }
        float sum = 0.0f;
        for (int j = 0; j < ctx; ++j) {
          scores[j] = std::exp(scores[j] - max_score);
          sum += scores[j];
        }
        float* oh = out + size_t(t) * num_heads * hd + size_t(h) * hd;
        std::fill(oh, oh + hd, 0.0f);
        const float inv = 1.0f / sum;
        for (int j = 0; j < ctx; ++j) {
          const size_t slot = size_t(table[j / bs]) * bs + j % bs;
          Axpy(scores[j] * inv, cache.v + slot * row + kv_offset, oh, hd);
        }
      }
    }
  }
}

}  // namespace hydra::cpu
