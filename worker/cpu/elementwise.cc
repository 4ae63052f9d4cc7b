// The memory-bound kernels around the matmuls: RMS norm, rotary embedding,
// SiLU gating, residual add and embedding lookup. Each is vectorized with
// AVX2 over a row and spread over rows with OpenMP once a call moves enough
// data to repay a fork/join (a decode step's rows are far too small).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/cpu/kernels.h"
#include "worker/cpu/vector_math.h"

namespace hydra::cpu {
namespace {

// ~128 KiB of floats: several microseconds of work, well above the cost of
// waking the OpenMP team.
constexpr size_t kMinParallelFloats = size_t(1) << 15;

// Runs body(i) for i in [0, count), over the OpenMP team only when the call
// touches at least kMinParallelFloats floats. The branch is explicit because
// even a parallel region disabled by an if() clause costs ~0.5 us in libgomp,
// more than a decode step's whole norm.
template <typename Body>
void ForEachRow(int count, size_t floats, const Body& body) {
  if (floats < kMinParallelFloats) {
    for (int i = 0; i < count; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int i = 0; i < count; ++i) body(i);
}

void RmsNormRow(const float* x, const float* weight, int dim, float eps,
                float* out) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int j = 0;
  for (; j + 16 <= dim; j += 16) {
    const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + 8);
    acc0 = _mm256_fmadd_ps(a, a, acc0);
    acc1 = _mm256_fmadd_ps(b, b, acc1);
  }
  float sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; j < dim; ++j) sum += x[j] * x[j];
  const float scale = 1.0f / std::sqrt(sum / float(dim) + eps);
  const __m256 vscale = _mm256_set1_ps(scale);
  j = 0;
  for (; j + 8 <= dim; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), vscale);
    _mm256_storeu_ps(out + j, _mm256_mul_ps(v, _mm256_loadu_ps(weight + j)));
  }
  for (; j < dim; ++j) out[j] = x[j] * scale * weight[j];
}

// Rotates one head in place: pairs (j, j + half) by the angles of cos/sin.
void RopeHead(float* head, int half, const float* cos, const float* sin) {
  float* lo = head;
  float* hi = head + half;
  int j = 0;
  for (; j + 8 <= half; j += 8) {
    const __m256 a = _mm256_loadu_ps(lo + j), b = _mm256_loadu_ps(hi + j);
    const __m256 c = _mm256_loadu_ps(cos + j), s = _mm256_loadu_ps(sin + j);
    _mm256_storeu_ps(lo + j, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
    _mm256_storeu_ps(hi + j, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
  }
  for (; j < half; ++j) {
    const float a = lo[j], b = hi[j];
    lo[j] = a * cos[j] - b * sin[j];
    hi[j] = b * cos[j] + a * sin[j];
  }
}

void SiluMulRow(const float* gate, const float* up, int hidden, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int j = 0;
  for (; j + 8 <= hidden; j += 8) {
    const __m256 g = _mm256_loadu_ps(gate + j);
    const __m256 denom =
        _mm256_add_ps(one, Exp(_mm256_sub_ps(_mm256_setzero_ps(), g)));
    _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_div_ps(g, denom),
                                            _mm256_loadu_ps(up + j)));
  }
  for (; j < hidden; ++j)
    out[j] = gate[j] / (1.0f + std::exp(-gate[j])) * up[j];
}

}  // namespace

void RmsNorm(const float* x, const float* weight, int m, int dim, float eps,
             float* out) {
  ForEachRow(m, size_t(m) * dim, [&](int i) {
    RmsNormRow(x + size_t(i) * dim, weight, dim, eps, out + size_t(i) * dim);
  });
}

std::vector<double> RopeInverseFrequencies(int head_dim, double theta,
                                           const model::RopeScaling& scaling) {
  using Type = model::RopeScaling::Type;
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw std::invalid_argument(
        "RopeInverseFrequencies: head_dim must be positive and even");
  }
  if (scaling.type != Type::kDefault && !(scaling.factor > 0)) {
    throw std::invalid_argument(
        "RopeInverseFrequencies: scaling factor must be > 0");
  }
  if (scaling.type == Type::kLlama3 &&
      !(scaling.low_freq_factor > 0 &&
        scaling.low_freq_factor < scaling.high_freq_factor &&
        scaling.original_max_position_embeddings > 0)) {
    throw std::invalid_argument(
        "RopeInverseFrequencies: llama3 scaling needs 0 < low_freq_factor < "
        "high_freq_factor and original_max_position_embeddings > 0");
  }
  const int half = head_dim / 2;
  std::vector<double> inv_freq(half);
  for (int j = 0; j < half; ++j) {
    inv_freq[j] = std::pow(theta, -2.0 * j / head_dim);
  }
  if (scaling.type == Type::kLinear) {
    for (double& f : inv_freq) f /= scaling.factor;
  } else if (scaling.type == Type::kLlama3) {
    const double factor = scaling.factor;
    const double low = scaling.low_freq_factor;
    const double high = scaling.high_freq_factor;
    const double original = scaling.original_max_position_embeddings;
    const double low_freq_wavelen = original / low;
    const double high_freq_wavelen = original / high;
    // As transformers does it: divide the low frequencies, then replace the
    // band that is neither high nor low with the blend.
    for (double& f : inv_freq) {
      const double wavelen = 2 * std::numbers::pi / f;
      double scaled = wavelen > low_freq_wavelen ? f / factor : f;
      if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
        const double smooth = (original / wavelen - low) / (high - low);
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv_freq;
}

RopeTable::RopeTable(int max_positions, int head_dim, float theta,
                     const model::RopeScaling& scaling)
    : max_positions_(max_positions), half_(head_dim / 2) {
  if (max_positions < 0 || head_dim <= 0 || head_dim % 2 != 0) {
    throw std::invalid_argument(
        "RopeTable: head_dim must be positive and even");
  }
  const std::vector<double> inv_freq =
      RopeInverseFrequencies(head_dim, theta, scaling);
  cos_.resize(size_t(max_positions) * half_);
  sin_.resize(size_t(max_positions) * half_);
  // In double: for long contexts pos * freq reaches 1e5+ radians, where a
  // float angle would already be off by a visible fraction of a turn.
  for (int p = 0; p < max_positions; ++p) {
    for (int j = 0; j < half_; ++j) {
      const double angle = double(p) * inv_freq[j];
      cos_[size_t(p) * half_ + j] = float(std::cos(angle));
      sin_[size_t(p) * half_ + j] = float(std::sin(angle));
    }
  }
}

void ApplyRope(float* x, int m, int stride, int num_heads,
               const int32_t* positions, const RopeTable& table) {
  // Checked up front: an exception cannot leave an OpenMP region.
  for (int i = 0; i < m; ++i) {
    if (positions[i] < 0 || positions[i] >= table.max_positions()) {
      throw std::out_of_range(
          "ApplyRope: position " + std::to_string(positions[i]) +
          " outside the table's " + std::to_string(table.max_positions()));
    }
  }
  const int head_dim = table.head_dim();
  ForEachRow(m, size_t(m) * num_heads * head_dim, [&](int i) {
    const float* cos = table.cos(positions[i]);
    const float* sin = table.sin(positions[i]);
    float* row = x + size_t(i) * stride;
    for (int h = 0; h < num_heads; ++h) {
      RopeHead(row + size_t(h) * head_dim, head_dim / 2, cos, sin);
    }
  });
}

void SiluMul(const float* gate_up, int m, int hidden, float* out) {
  ForEachRow(m, size_t(m) * hidden, [&](int i) {
    const float* gate = gate_up + size_t(i) * 2 * hidden;
    SiluMulRow(gate, gate + hidden, hidden, out + size_t(i) * hidden);
  });
}

void AddInPlace(float* x, const float* y, size_t n) {
  // Blocks of whole vectors stand in for rows; the threshold is higher than
  // for the other kernels because an add does one flop per 12 bytes.
  constexpr size_t kBlock = 1024;
  const int blocks = int((n + kBlock - 1) / kBlock);
  ForEachRow(blocks, n / 4, [&](int b) {
    const size_t end = std::min(n, (size_t(b) + 1) * kBlock);
    size_t i = size_t(b) * kBlock;
    for (; i + 8 <= end; i += 8) {
      _mm256_storeu_ps(
          x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < end; ++i) x[i] += y[i];
  });
}

void EmbeddingLookup(const PackedMatrix& table, int first_row,
                     const int32_t* ids, int m, float* out) {
  const int dim = table.cols();
  ForEachRow(m, size_t(m) * dim, [&](int i) {
    float* row = out + size_t(i) * dim;
    const int r = ids[i] - first_row;
    if (r >= 0 && r < table.rows()) {
      table.ReadRow(r, row);
    } else {
      std::fill_n(row, dim, 0.0f);
    }
  });
}

}  // namespace hydra::cpu
