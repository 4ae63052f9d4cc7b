// CPU kernels against plain double-precision references on random inputs.
// Sizes are deliberately not multiples of the vector width (8), the row block
// (6) or the panel (16), so every tail and padding path runs.
#include "worker/cpu/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace hydra::cpu {
namespace {

constexpr float kSentinel = -12345.0f;

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float lo = -1.0f,
                                float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Runs MatMul on strided x/y buffers and checks every output against a
// double-precision reference, relative to the sum of |terms| (the scale that
// float rounding error grows with), and that the stride gaps stay untouched.
void CheckMatMul(int m, int n, int k, bool with_bias, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "m=" << m << " n=" << n << " k=" << k
                                  << " bias=" << with_bias);
  const int x_stride = k + 5, y_stride = n + 3;
  const std::vector<float> w = RandomVector(size_t(n) * k, rng);
  const std::vector<float> x = RandomVector(size_t(m) * x_stride, rng);
  const std::vector<float> bias = RandomVector(n, rng);
  std::vector<float> y(size_t(m) * y_stride, kSentinel);
  const PackedMatrix packed(w, n, k);
  ASSERT_EQ(packed.rows(), n);
  ASSERT_EQ(packed.cols(), k);
  // Resident bytes: whole panels of 16 rows.
  EXPECT_EQ(packed.bytes(),
            size_t(packed.num_panels()) * 16 * k * sizeof(float));

  MatMul(x.data(), m, x_stride, packed, with_bias ? bias.data() : nullptr,
         y.data(), y_stride);

  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = with_bias ? bias[j] : 0.0;
      double scale = with_bias ? std::abs(bias[j]) : 0.0;
      for (int t = 0; t < k; ++t) {
        const double term =
            double(x[size_t(i) * x_stride + t]) * w[size_t(j) * k + t];
        sum += term;
        scale += std::abs(term);
      }
      ASSERT_NEAR(y[size_t(i) * y_stride + j], sum, 1e-4 * scale + 1e-30)
          << "at row " << i << " col " << j;
    }
    for (int j = n; j < y_stride; ++j) {
      ASSERT_EQ(y[size_t(i) * y_stride + j], kSentinel)
          << "gap written, row " << i;
    }
  }
}

class MatMulTest : public testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(MatMulTest, MatchesReferenceForAllWidths) {
  const auto [m, k] = GetParam();
  std::mt19937 rng(1000 * m + k);
  for (int n : {1, 15, 17, 33, 288, 300}) {
    for (bool bias : {false, true}) CheckMatMul(m, n, k, bias, rng);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatMulTest,
                         testing::Combine(testing::Values(1, 2, 5, 7, 13, 64,
                                                          67),
                                          testing::Values(1, 3, 17, 288, 291)));

// Large enough to be cut into several k blocks and row chunks.
TEST(MatMulBlockingTest, ManyKBlocksAndRowChunks) {
  std::mt19937 rng(7);
  CheckMatMul(/*m=*/301, /*n=*/70, /*k=*/1000, /*with_bias=*/true, rng);
  CheckMatMul(/*m=*/97, /*n=*/3, /*k=*/777, /*with_bias=*/false, rng);
}

// The tiling depends on the thread count; the arithmetic per output must not.
TEST(MatMulBlockingTest, SameBitsWithOneThread) {
  std::mt19937 rng(8);
  const int m = 67, n = 300, k = 291;
  const std::vector<float> w = RandomVector(size_t(n) * k, rng);
  const std::vector<float> x = RandomVector(size_t(m) * k, rng);
  const PackedMatrix packed(w, n, k);
  std::vector<float> many(size_t(m) * n), one(size_t(m) * n);
  MatMul(x.data(), m, k, packed, nullptr, many.data(), n);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  MatMul(x.data(), m, k, packed, nullptr, one.data(), n);
  omp_set_num_threads(threads);
  EXPECT_EQ(many, one);
}

TEST(MatMulBlockingTest, EmptyKGivesBias) {
  const PackedMatrix packed(std::span<const float>(), 3, 0);
  const float bias[] = {1.5f, -2.0f, 0.25f};
  float y[2 * 3] = {};
  const float x[2] = {};
  MatMul(x, 2, 0, packed, bias, y, 3);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_EQ(y[i * 3 + j], bias[j]);
  }
}

TEST(PackedMatrixTest, RejectsShortWeights) {
  const std::vector<float> w(10);
  EXPECT_THROW(PackedMatrix(w, 3, 4), std::invalid_argument);
}

TEST(PackedMatrixTest, PackEqualsPackingTheStackedRows) {
  std::mt19937 rng(11);
  const int k = 29;
  const int rows[] = {5, 17, 3};
  std::vector<std::vector<float>> parts;
  std::vector<float> stacked;
  std::vector<model::TensorBlock> blocks;
  for (int r : rows) {
    parts.push_back(RandomVector(size_t(r) * k, rng));
    stacked.insert(stacked.end(), parts.back().begin(), parts.back().end());
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    blocks.push_back({reinterpret_cast<const std::byte*>(parts[i].data()),
                      model::DType::kF32, rows[i], k, k});
  }
  const PackedMatrix concat = PackedMatrix::Pack(blocks, WeightType::kF32);
  const PackedMatrix whole(stacked, 25, k);
  ASSERT_EQ(concat.rows(), 25);
  ASSERT_EQ(concat.cols(), k);

  const int m = 7;
  const std::vector<float> x = RandomVector(size_t(m) * k, rng);
  std::vector<float> a(size_t(m) * 25), b(size_t(m) * 25);
  MatMul(x.data(), m, k, concat, nullptr, a.data(), 25);
  MatMul(x.data(), m, k, whole, nullptr, b.data(), 25);
  EXPECT_EQ(a, b);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < 25; ++j) {
      double sum = 0.0;
      for (int t = 0; t < k; ++t)
        sum += double(x[i * k + t]) * stacked[j * k + t];
      EXPECT_NEAR(a[i * 25 + j], sum, 1e-4 * k);
    }
  }
}

TEST(PackedMatrixTest, PackRejectsMismatchedParts) {
  const std::vector<float> part(6);
  const model::TensorBlock blocks[] = {
      {reinterpret_cast<const std::byte*>(part.data()), model::DType::kF32, 3,
       2, 2},
      {reinterpret_cast<const std::byte*>(part.data()), model::DType::kF32, 2,
       3, 3}};
  EXPECT_THROW(PackedMatrix::Pack(blocks, WeightType::kF32),
               std::invalid_argument);
}

TEST(PackedMatrixTest, MinRowsPadsWithZeroRows) {
  std::mt19937 rng(12);
  const std::vector<float> w = RandomVector(3 * 8, rng);
  const model::TensorBlock block{reinterpret_cast<const std::byte*>(w.data()),
                                 model::DType::kF32, 3, 8, 8};
  const PackedMatrix packed =
      PackedMatrix::Pack({&block, 1}, WeightType::kF32, 5);
  ASSERT_EQ(packed.rows(), 5);
  std::vector<float> row(8);
  packed.ReadRow(4, row.data());
  for (float v : row) EXPECT_EQ(v, 0.0f);
  packed.ReadRow(2, row.data());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(row[i], w[2 * 8 + i]);
}

TEST(RmsNormTest, MatchesReference) {
  std::mt19937 rng(21);
  const float eps = 1e-5f;
  // m = 200 x dim = 291 is large enough for the multithreaded path.
  for (int m : {1, 3, 7, 64, 200}) {
    for (int dim : {1, 7, 17, 288, 291}) {
      SCOPED_TRACE(testing::Message() << "m=" << m << " dim=" << dim);
      const std::vector<float> x =
          RandomVector(size_t(m) * dim, rng, -3.0f, 3.0f);
      const std::vector<float> weight = RandomVector(dim, rng, 0.5f, 1.5f);
      std::vector<float> out(x.size());
      RmsNorm(x.data(), weight.data(), m, dim, eps, out.data());
      for (int i = 0; i < m; ++i) {
        double sum_sq = 0.0;
        for (int j = 0; j < dim; ++j)
          sum_sq += double(x[i * dim + j]) * x[i * dim + j];
        const double inv_rms = 1.0 / std::sqrt(sum_sq / dim + eps);
        for (int j = 0; j < dim; ++j) {
          const double want = x[i * dim + j] * inv_rms * weight[j];
          ASSERT_NEAR(out[i * dim + j], want, 1e-4 * std::abs(want) + 1e-6);
        }
      }
    }
  }
}

TEST(RmsNormTest, WorksInPlace) {
  std::mt19937 rng(22);
  const int m = 5, dim = 291;
  std::vector<float> x = RandomVector(size_t(m) * dim, rng);
  const std::vector<float> weight = RandomVector(dim, rng);
  std::vector<float> expected(x.size());
  RmsNorm(x.data(), weight.data(), m, dim, 1e-6f, expected.data());
  RmsNorm(x.data(), weight.data(), m, dim, 1e-6f, x.data());
  EXPECT_EQ(x, expected);
}

TEST(RopeTest, TableMatchesClosedForm) {
  const int max_positions = 4096, head_dim = 34;
  const float theta = 10000.0f;
  const RopeTable table(max_positions, head_dim, theta, {});
  EXPECT_EQ(table.head_dim(), head_dim);
  EXPECT_EQ(table.max_positions(), max_positions);
  for (int pos : {0, 1, 17, 1000, max_positions - 1}) {
    for (int j = 0; j < head_dim / 2; ++j) {
      const double angle = pos * std::pow(double(theta), -2.0 * j / head_dim);
      EXPECT_NEAR(table.cos(pos)[j], std::cos(angle), 1e-6);
      EXPECT_NEAR(table.sin(pos)[j], std::sin(angle), 1e-6);
    }
  }
}

TEST(RopeTest, RotatesHalvesOfEveryHead) {
  std::mt19937 rng(31);
  const float theta = 10000.0f;
  const int max_positions = 2048;
  // head_dim 48 is stories15M's; 34 and 6 leave vector tails (half = 17, 3).
  for (int head_dim : {2, 6, 34, 48, 64}) {
    for (int m : {1, 5, 67}) {
      SCOPED_TRACE(testing::Message() << "head_dim=" << head_dim << " m=" << m);
      const int num_heads = 3;
      // Rows as in a fused QKV buffer: the heads rotated here are followed by
      // columns that must be left alone.
      const int stride = num_heads * head_dim + 11;
      const RopeTable table(max_positions, head_dim, theta, {});
      std::uniform_int_distribution<int32_t> pos_dist(0, max_positions - 1);
      std::vector<int32_t> positions(m);
      for (int32_t& p : positions) p = pos_dist(rng);
      positions[0] = max_positions - 1;
      if (m > 1) positions[1] = 0;
      const std::vector<float> before = RandomVector(size_t(m) * stride, rng);
      std::vector<float> x = before;
      ApplyRope(x.data(), m, stride, num_heads, positions.data(), table);

      const int half = head_dim / 2;
      for (int i = 0; i < m; ++i) {
        const float* in = before.data() + size_t(i) * stride;
        const float* got = x.data() + size_t(i) * stride;
        for (int h = 0; h < num_heads; ++h) {
          for (int j = 0; j < half; ++j) {
            const double angle =
                positions[i] * std::pow(double(theta), -2.0 * j / head_dim);
            const double a = in[h * head_dim + j],
                         b = in[h * head_dim + j + half];
            ASSERT_NEAR(got[h * head_dim + j],
                        a * std::cos(angle) - b * std::sin(angle), 1e-5);
            ASSERT_NEAR(got[h * head_dim + j + half],
                        b * std::cos(angle) + a * std::sin(angle), 1e-5);
          }
        }
        for (int j = num_heads * head_dim; j < stride; ++j)
          ASSERT_EQ(got[j], in[j]);
      }
    }
  }
}

TEST(RopeTest, RejectsPositionOutsideTable) {
  const RopeTable table(8, 4, 10000.0f, {});
  std::vector<float> x(4, 1.0f);
  const int32_t beyond[] = {8};
  EXPECT_THROW(ApplyRope(x.data(), 1, 4, 1, beyond, table), std::out_of_range);
  const int32_t negative[] = {-1};
  EXPECT_THROW(ApplyRope(x.data(), 1, 4, 1, negative, table),
               std::out_of_range);
}

TEST(RopeTest, RejectsOddHeadDim) {
  EXPECT_THROW(RopeTable(8, 5, 10000.0f, {}), std::invalid_argument);
}

// Hugging Face's _compute_llama3_parameters, transcribed element by element.
double HfLlama3InvFreq(int j, int head_dim, double theta, double factor,
                       double low_freq_factor, double high_freq_factor,
                       double old_context_len) {
  const double pi = 3.14159265358979323846;
  const double inv_freq = 1.0 / std::pow(theta, double(2 * j) / head_dim);
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  const double wavelen = 2 * pi / inv_freq;
  double inv_freq_llama =
      wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
  const double smooth_factor = (old_context_len / wavelen - low_freq_factor) /
                               (high_freq_factor - low_freq_factor);
  const double smoothed_inv_freq =
      (1 - smooth_factor) * inv_freq_llama / factor +
      smooth_factor * inv_freq_llama;
  const bool is_medium_freq =
      !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
  if (is_medium_freq) inv_freq_llama = smoothed_inv_freq;
  return inv_freq_llama;
}

model::RopeScaling Llama32Scaling() {
  model::RopeScaling s;
  s.type = model::RopeScaling::Type::kLlama3;
  s.factor = 32.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  return s;
}

TEST(RopeTest, Llama3InverseFrequenciesMatchHuggingFace) {
  // Llama-3.2-1B: head_dim 64, theta 500000, factor 32, low 1, high 4, 8192.
  const int head_dim = 64;
  const double theta = 500000.0, pi = 3.14159265358979323846;
  const model::RopeScaling scaling = Llama32Scaling();
  const std::vector<double> got =
      RopeInverseFrequencies(head_dim, theta, scaling);
  ASSERT_EQ(got.size(), size_t(head_dim / 2));
  enum Band { kHigh, kMedium, kLow };
  // The band boundaries are wavelengths 8192 / 4 = 2048 and 8192 / 1 = 8192.
  const std::tuple<int, Band> picks[] = {
      {0, kHigh},    {10, kHigh}, {14, kHigh}, {15, kMedium}, {16, kMedium},
      {17, kMedium}, {18, kLow},  {25, kLow},  {31, kLow}};
  for (const auto& [j, band] : picks) {
    SCOPED_TRACE(testing::Message() << "j=" << j);
    const double base = 1.0 / std::pow(theta, double(2 * j) / head_dim);
    const double wavelen = 2 * pi / base;
    switch (band) {
      case kHigh:
        ASSERT_LT(wavelen, 2048.0);
        break;
      case kMedium:
        ASSERT_GE(wavelen, 2048.0);
        ASSERT_LE(wavelen, 8192.0);
        break;
      case kLow:
        ASSERT_GT(wavelen, 8192.0);
        break;
    }
    const double want =
        HfLlama3InvFreq(j, head_dim, theta, 32.0, 1.0, 4.0, 8192.0);
    EXPECT_NEAR(got[j], want, 1e-9 * want);
    // And the band's own rule, spelled out.
    if (band == kHigh) {
      EXPECT_NEAR(got[j], base, 1e-9 * base);
    } else if (band == kLow) {
      EXPECT_NEAR(got[j], base / 32.0, 1e-9 * base);
    } else {
      EXPECT_LT(got[j], base);
      EXPECT_GT(got[j], base / 32.0);
    }
  }
}

TEST(RopeTest, LinearScalingDividesEveryFrequency) {
  const int head_dim = 34;
  const double theta = 10000.0;
  model::RopeScaling linear;
  linear.type = model::RopeScaling::Type::kLinear;
  linear.factor = 4.0;
  const std::vector<double> got =
      RopeInverseFrequencies(head_dim, theta, linear);
  ASSERT_EQ(got.size(), size_t(head_dim / 2));
  for (int j = 0; j < head_dim / 2; ++j) {
    const double want = std::pow(theta, -2.0 * j / head_dim) / 4.0;
    EXPECT_NEAR(got[j], want, 1e-12 * want) << "j=" << j;
  }
  // Position 4p of the scaled table is position p of the plain one.
  const RopeTable plain(64, head_dim, float(theta), {});
  const RopeTable scaled(256, head_dim, float(theta), linear);
  for (int p : {0, 1, 7, 63}) {
    for (int j = 0; j < head_dim / 2; ++j) {
      EXPECT_NEAR(scaled.cos(4 * p)[j], plain.cos(p)[j], 1e-6);
      EXPECT_NEAR(scaled.sin(4 * p)[j], plain.sin(p)[j], 1e-6);
    }
  }
}

TEST(RopeTest, DefaultScalingIsPlainRope) {
  model::RopeScaling ignored;  // kDefault: factor and the rest do not apply
  ignored.factor = 8.0;
  ignored.original_max_position_embeddings = 16;
  const std::vector<double> got = RopeInverseFrequencies(48, 10000.0, ignored);
  for (int j = 0; j < 24; ++j) {
    EXPECT_EQ(got[j], std::pow(10000.0, -2.0 * j / 48)) << "j=" << j;
  }
}

TEST(RopeTest, ScaledTableUsesScaledFrequencies) {
  const int max_positions = 3000, head_dim = 64;
  const float theta = 500000.0f;
  const model::RopeScaling scaling = Llama32Scaling();
  const RopeTable table(max_positions, head_dim, theta, scaling);
  for (int pos : {0, 1, 1234, max_positions - 1}) {
    for (int j = 0; j < head_dim / 2; ++j) {
      const double angle =
          pos * HfLlama3InvFreq(j, head_dim, theta, 32.0, 1.0, 4.0, 8192.0);
      EXPECT_NEAR(table.cos(pos)[j], std::cos(angle), 1e-6);
      EXPECT_NEAR(table.sin(pos)[j], std::sin(angle), 1e-6);
    }
  }
}

TEST(RopeTest, RejectsInvalidScaling) {
  model::RopeScaling bad = Llama32Scaling();
  bad.factor = 0;
  EXPECT_THROW(RopeInverseFrequencies(64, 500000.0, bad),
               std::invalid_argument);
  bad = Llama32Scaling();
  bad.low_freq_factor = bad.high_freq_factor;
  EXPECT_THROW(RopeTable(8, 64, 500000.0f, bad), std::invalid_argument);
  bad = Llama32Scaling();
  bad.original_max_position_embeddings = 0;
  EXPECT_THROW(RopeInverseFrequencies(64, 500000.0, bad),
               std::invalid_argument);
}

TEST(SiluMulTest, MatchesReference) {
  std::mt19937 rng(41);
  for (int m : {1, 3, 9, 64}) {
    for (int hidden : {1, 7, 8, 17, 768}) {
      SCOPED_TRACE(testing::Message() << "m=" << m << " hidden=" << hidden);
      std::vector<float> gate_up =
          RandomVector(size_t(m) * 2 * hidden, rng, -10.0f, 10.0f);
      // Saturating gates, where e^-g overflows or vanishes, in the vector body.
      const float extremes[] = {-200.0f, -88.5f, 88.5f, 200.0f, 1e-3f, -1e-3f};
      for (int e = 0; e < 6 && e < hidden; ++e) gate_up[e] = extremes[e];
      std::vector<float> out(size_t(m) * hidden);
      SiluMul(gate_up.data(), m, hidden, out.data());
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < hidden; ++j) {
          const double g = gate_up[size_t(i) * 2 * hidden + j];
          const double u = gate_up[size_t(i) * 2 * hidden + hidden + j];
          const double want = g / (1.0 + std::exp(-g)) * u;
          ASSERT_NEAR(out[size_t(i) * hidden + j], want,
                      1e-5 * std::abs(want) + 1e-30)
              << "at row " << i << " col " << j << " gate " << g;
        }
      }
    }
  }
}

TEST(AddInPlaceTest, MatchesReference) {
  std::mt19937 rng(51);
  // The largest size takes the multithreaded path.
  for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(1001),
                   (size_t(1) << 18) + 3}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    std::vector<float> x = RandomVector(n, rng);
    const std::vector<float> y = RandomVector(n, rng);
    const std::vector<float> before = x;
    AddInPlace(x.data(), y.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(x[i], before[i] + y[i]);
  }
}

TEST(EmbeddingLookupTest, CopiesRowsOfItsSliceAndZerosOthers) {
  std::mt19937 rng(61);
  const int vocab = 50, dim = 17, first = 10;
  const std::vector<float> table = RandomVector(size_t(vocab) * dim, rng);
  const PackedMatrix packed(table, vocab, dim);
  const std::vector<int32_t> ids = {13, 10, 59, 13, 27, 32, 59, 3, 60};
  const int m = int(ids.size());
  std::vector<float> out(size_t(m) * dim, 1.0f);
  EmbeddingLookup(packed, first, ids.data(), m, out.data());
  for (int i = 0; i < m; ++i) {
    const int r = ids[i] - first;
    for (int j = 0; j < dim; ++j) {
      const float want =
          r >= 0 && r < vocab ? table[size_t(r) * dim + j] : 0.0f;
      ASSERT_EQ(out[size_t(i) * dim + j], want) << "token " << ids[i];
    }
  }
}

}  // namespace
}  // namespace hydra::cpu
