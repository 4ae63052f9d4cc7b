// The half-precision and int8 kernels against scalar references on random
// inputs with ragged sizes: GEMM for every WeightType, paged attention for
// every KvType. Each reference rounds or quantises the same inputs
// independently of the kernels (in double), so the bounds are tight.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "worker/cpu/kernels.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::cpu {
namespace {

std::vector<float> Random(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Round to nearest even at 8 significant bits, from the bit pattern.
float RoundBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}
float RoundF16(float x) { return static_cast<float>(static_cast<_Float16>(x)); }

// Symmetric quantisation of `n` values: returns the scale, fills q.
double Quantize(const float* x, int n, std::vector<int>& q) {
  double amax = 0.0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(double(x[i])));
  // The kernels compute the scale and its inverse in float.
  const float scale = float(amax) / 127.0f;
  const float inv = amax > 0 ? 127.0f / float(amax) : 0.0f;
  q.assign(n, 0);
  for (int i = 0; i < n; ++i) q[i] = int(std::lrint(x[i] * inv));
  return scale;
}

// y = x · Wᵀ + bias as the kernel for `type` should compute it.
std::vector<double> Reference(const std::vector<float>& x,
                              const std::vector<float>& w,
                              const std::vector<float>& bias, int m, int n,
                              int k, WeightType type) {
  std::vector<double> y(size_t(m) * n);
  if (type == WeightType::kInt8) {
    constexpr int kB = PackedMatrix::kInt8Block;
    const int blocks = (k + kB - 1) / kB;
    std::vector<int> qx, qw;
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double sum = bias[j];
        for (int b = 0; b < blocks; ++b) {
          const int k0 = b * kB, len = std::min(kB, k - k0);
          const double sx = Quantize(&x[size_t(i) * k + k0], len, qx);
          const double sw = Quantize(&w[size_t(j) * k + k0], len, qw);
          long dot = 0;
          for (int t = 0; t < len; ++t) dot += long(qx[t]) * qw[t];
          sum += float(float(sx) * float(sw)) * double(dot);
        }
        y[size_t(i) * n + j] = sum;
      }
    }
    return y;
  }
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = bias[j];
      for (int t = 0; t < k; ++t) {
        float wt = w[size_t(j) * k + t];
        if (type == WeightType::kBF16) wt = RoundBf16(wt);
        if (type == WeightType::kF16) wt = RoundF16(wt);
        sum += double(x[size_t(i) * k + t]) * wt;
      }
      y[size_t(i) * n + j] = sum;
    }
  }
  return y;
}

class TypedMatMulTest : public testing::TestWithParam<WeightType> {};

TEST_P(TypedMatMulTest, MatchesScalarReferenceOnRaggedSizes) {
  const WeightType type = GetParam();
  std::mt19937 rng(int(type) * 101 + 7);
  for (int m : {1, 2, 3, 5, 7, 13, 40}) {
    for (int n : {1, 3, 4, 5, 16, 17, 33}) {
      for (int k : {1, 7, 31, 32, 33, 64, 100, 291}) {
        SCOPED_TRACE(testing::Message() << WeightTypeName(type) << " m=" << m
                                        << " n=" << n << " k=" << k);
        const std::vector<float> w = Random(size_t(n) * k, rng);
        const std::vector<float> x = Random(size_t(m) * k, rng);
        const std::vector<float> bias = Random(n, rng);
        const PackedMatrix packed(w, n, k, type);
        // y has a wider stride than n: the kernel must not write past n.
        const int stride = n + 3;
        std::vector<float> y(size_t(m) * stride, 123.0f);
        MatMul(x.data(), m, k, packed, bias.data(), y.data(), stride);
        const std::vector<double> want = Reference(x, w, bias, m, n, k, type);
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < n; ++j) {
            // fp32 accumulation of k products of unit-variance values.
            ASSERT_NEAR(y[size_t(i) * stride + j], want[size_t(i) * n + j],
                        2e-5 * k + 1e-5)
                << "row " << i << " col " << j;
          }
          for (int j = n; j < stride; ++j) {
            ASSERT_EQ(y[size_t(i) * stride + j], 123.0f);
          }
        }
      }
    }
  }
}

TEST_P(TypedMatMulTest, ThreadCountDoesNotChangeTheResult) {
  const WeightType type = GetParam();
  std::mt19937 rng(5);
  const int m = 37, n = 300, k = 160;
  const std::vector<float> w = Random(size_t(n) * k, rng);
  const std::vector<float> x = Random(size_t(m) * k, rng);
  const PackedMatrix packed(w, n, k, type);
  std::vector<float> many(size_t(m) * n), one(size_t(m) * n);
  MatMul(x.data(), m, k, packed, nullptr, many.data(), n);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  MatMul(x.data(), m, k, packed, nullptr, one.data(), n);
  omp_set_num_threads(threads);
  EXPECT_EQ(many, one);
}

// A row's result must not depend on the rows batched with it, so that a
// greedy stream gives the same tokens alone and under load: bit for bit.
TEST_P(TypedMatMulTest, ARowGivesTheSameBitsInEveryBatch) {
  const WeightType type = GetParam();
  std::mt19937 rng(int(type) + 17);
  // n: whole panels and a ragged tail; k: past one k block (384).
  for (int n : {64, 100, 300}) {
    for (int k : {160, 900}) {
      const std::vector<float> w = Random(size_t(n) * k, rng);
      const std::vector<float> bias = Random(n, rng);
      const PackedMatrix packed(w, n, k, type);
      const std::vector<float> row = Random(k, rng);
      std::vector<float> alone(n);
      MatMul(row.data(), 1, k, packed, bias.data(), alone.data(), n);
      for (int m : {2, 3, 4, 6, 7, 13, 40}) {
        SCOPED_TRACE(testing::Message() << WeightTypeName(type) << " n=" << n
                                        << " k=" << k << " m=" << m);
        std::vector<float> x = Random(size_t(m) * k, rng);
        const int at = m / 2;  // the row somewhere inside the batch
        std::copy(row.begin(), row.end(), x.begin() + size_t(at) * k);
        std::vector<float> y(size_t(m) * n);
        MatMul(x.data(), m, k, packed, bias.data(), y.data(), n);
        ASSERT_TRUE(
            std::equal(alone.begin(), alone.end(), y.begin() + size_t(at) * n));
      }
    }
  }
}

TEST_P(TypedMatMulTest, ReadRowReturnsTheStoredValues) {
  const WeightType type = GetParam();
  std::mt19937 rng(9);
  const int n = 21, k = 70;
  const std::vector<float> w = Random(size_t(n) * k, rng);
  const PackedMatrix packed(w, n, k, type);
  std::vector<float> row(k);
  std::vector<int> q;
  for (int r = 0; r < n; ++r) {
    packed.ReadRow(r, row.data());
    for (int c = 0; c < k; ++c) {
      const float v = w[size_t(r) * k + c];
      float want = v;
      if (type == WeightType::kBF16) want = RoundBf16(v);
      if (type == WeightType::kF16) want = RoundF16(v);
      if (type == WeightType::kInt8) {
        const int b0 = c / 32 * 32, len = std::min(32, k - b0);
        const double s = Quantize(&w[size_t(r) * k + b0], len, q);
        want = float(s) * q[c - b0];
      }
      ASSERT_FLOAT_EQ(row[c], want) << "row " << r << " col " << c;
    }
  }
}

TEST(TypedMatMulTest, BytesPerWeight) {
  const int n = 64, k = 256;
  const std::vector<float> w(size_t(n) * k, 0.5f);
  EXPECT_EQ(PackedMatrix(w, n, k, WeightType::kF32).bytes(), size_t(n) * k * 4);
  EXPECT_EQ(PackedMatrix(w, n, k, WeightType::kBF16).bytes(),
            size_t(n) * k * 2);
  EXPECT_EQ(PackedMatrix(w, n, k, WeightType::kF16).bytes(), size_t(n) * k * 2);
  // One byte a weight plus a 4-byte scale per 32: 1.125 bytes.
  EXPECT_EQ(PackedMatrix(w, n, k, WeightType::kInt8).bytes(),
            size_t(n) * k + size_t(n) * k / 32 * 4);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, TypedMatMulTest,
                         testing::Values(WeightType::kF32, WeightType::kBF16,
                                         WeightType::kF16, WeightType::kInt8),
                         [](const auto& info) {
                           return std::string(WeightTypeName(info.param));
                         });

// Paged attention over each KV type against a contiguous reference computed
// from the values the cache should hold (rounded or quantised per token and
// head, independently of the kernels).
class TypedAttentionTest
    : public testing::TestWithParam<std::tuple<KvType, int>> {};

TEST_P(TypedAttentionTest, MatchesReferenceOverStoredValues) {
  const auto [type, head_dim] = GetParam();
  std::mt19937 rng(int(type) * 31 + head_dim);
  const int kv_heads = 2, heads = 6, block_size = 4;
  const int row = kv_heads * head_dim;
  const std::vector<int> lens = {1, 5, 23};  // ragged, across blocks
  int blocks = 2;
  for (int len : lens) blocks += (len + block_size - 1) / block_size;
  const size_t per_head = KvBytesPerHead(type, head_dim);
  const size_t values = (type == KvType::kInt8 ? head_dim : per_head) *
                        size_t(blocks) * block_size * kv_heads;
  std::vector<std::byte> kc(values), vc(values);
  std::vector<float> ks(size_t(blocks) * block_size * kv_heads), vs(ks.size());
  const PagedKvLayer cache{
      .k = kc.data(),
      .v = vc.data(),
      .k_scale = type == KvType::kInt8 ? ks.data() : nullptr,
      .v_scale = type == KvType::kInt8 ? vs.data() : nullptr,
      .type = type,
      .num_blocks = blocks,
      .block_size = block_size,
      .kv_heads = kv_heads,
      .head_dim = head_dim};
  // Blocks handed out in reverse, so tables are not the identity.
  int next = blocks - 1;
  std::vector<std::vector<int32_t>> tables(lens.size());
  std::vector<std::vector<float>> stored_k(lens.size()), stored_v(lens.size());
  auto stored = [&](const float* x) {
    std::vector<float> out(row);
    std::vector<int> q;
    for (int h = 0; h < kv_heads; ++h) {
      const float* xh = x + h * head_dim;
      const double s = type == KvType::kInt8 ? Quantize(xh, head_dim, q) : 0.0;
      for (int d = 0; d < head_dim; ++d) {
        float v = xh[d];
        if (type == KvType::kBF16) v = RoundBf16(v);
        if (type == KvType::kF16) v = RoundF16(v);
        if (type == KvType::kInt8) v = float(s) * q[d];
        out[h * head_dim + d] = v;
      }
    }
    return out;
  };
  for (size_t s = 0; s < lens.size(); ++s) {
    const int len = lens[s];
    for (int b = 0; b < (len + block_size - 1) / block_size; ++b) {
      tables[s].push_back(next--);
    }
    const std::vector<float> k = Random(size_t(len) * row, rng);
    const std::vector<float> v = Random(size_t(len) * row, rng);
    std::vector<int32_t> slots(len);
    for (int p = 0; p < len; ++p) {
      slots[p] = tables[s][p / block_size] * block_size + p % block_size;
      const std::vector<float> sk = stored(&k[size_t(p) * row]);
      const std::vector<float> sv = stored(&v[size_t(p) * row]);
      stored_k[s].insert(stored_k[s].end(), sk.begin(), sk.end());
      stored_v[s].insert(stored_v[s].end(), sv.begin(), sv.end());
    }
    WriteKv(k.data(), v.data(), row, len, slots.data(), cache);
  }
  // Every position of every sequence queries (a prefill of all three).
  std::vector<int32_t> positions;
  std::vector<const int32_t*> token_tables;
  std::vector<int> token_seq;
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int p = 0; p < lens[s]; ++p) {
      positions.push_back(p);
      token_tables.push_back(tables[s].data());
      token_seq.push_back(int(s));
    }
  }
  const int m = int(positions.size());
  const std::vector<float> q = Random(size_t(m) * heads * head_dim, rng);
  std::vector<float> out(size_t(m) * heads * head_dim);
  PagedAttention(q.data(), heads * head_dim, m, heads, cache, positions.data(),
                 token_tables.data(), out.data());
  const double scale = 1.0 / std::sqrt(double(head_dim));
  for (int t = 0; t < m; ++t) {
    const int s = token_seq[t], ctx = positions[t] + 1;
    for (int h = 0; h < heads; ++h) {
      const int kvh = h / (heads / kv_heads);
      const float* qh = &q[(size_t(t) * heads + h) * head_dim];
      std::vector<double> p(ctx);
      double mx = -1e300, sum = 0.0;
      for (int j = 0; j < ctx; ++j) {
        double dot = 0.0;
        for (int d = 0; d < head_dim; ++d) {
          dot +=
              double(qh[d]) * stored_k[s][size_t(j) * row + kvh * head_dim + d];
        }
        mx = std::max(mx, p[j] = dot * scale);
      }
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int d = 0; d < head_dim; ++d) {
        double want = 0.0;
        for (int j = 0; j < ctx; ++j) {
          want +=
              p[j] / sum * stored_v[s][size_t(j) * row + kvh * head_dim + d];
        }
        ASSERT_NEAR(out[(size_t(t) * heads + h) * head_dim + d], want, 2e-5)
            << KvTypeName(type) << " token " << t << " head " << h << " d "
            << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, TypedAttentionTest,
    testing::Combine(testing::Values(KvType::kF32, KvType::kBF16, KvType::kF16,
                                     KvType::kInt8),
                     testing::Values(48, 64, 68)),
    [](const auto& info) {
      return std::string(KvTypeName(std::get<0>(info.param))) + "_hd" +
             std::to_string(std::get<1>(info.param));
    });

TEST(KvBytesTest, CapacityPerBudgetGrowsAsTheTypeShrinks) {
  EXPECT_EQ(KvBytesPerHead(KvType::kF32, 64), 256u);
  EXPECT_EQ(KvBytesPerHead(KvType::kBF16, 64), 128u);
  EXPECT_EQ(KvBytesPerHead(KvType::kF16, 64), 128u);
  EXPECT_EQ(KvBytesPerHead(KvType::kInt8, 64), 68u);  // 64 values + scale
}

}  // namespace
}  // namespace hydra::cpu
