// The tiled prefill-chunk kernel against the per-token kernel on the same
// cache, and against causal attention in double precision on the values the
// cache holds (dequantised), for every KV type.
#include "worker/cpu/tiled_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "worker/cpu/number_formats.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::cpu {
namespace {

struct Seq {
  int context;  // positions [0, context) are cached
  int queries;  // the last `queries` of them are queried
};

struct TiledCase {
  std::string name;
  int num_heads, kv_heads, head_dim, block_size;
  std::vector<Seq> seqs;  // their tokens appear in the call in this order
  float q_scale;          // spreads the scores: larger = peakier softmax
};

// A paged cache holding random K/V for each sequence (never zeros; unused
// slots hold random stale values too), and one call's query tokens.
class Problem {
 public:
  Problem(const TiledCase& c, KvType type)
      : c_(c), group_(c.num_heads / c.kv_heads), row_(c.kv_heads * c.head_dim) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    int blocks = 3;
    for (const Seq& s : c.seqs) blocks += BlocksFor(s.context);
    std::vector<int> pool(blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    const size_t slots = size_t(blocks) * c.block_size;
    k_.resize(slots * KvBytesPerHead(type, c.head_dim) * c.kv_heads);
    v_.resize(k_.size());
    if (type == KvType::kInt8) {
      k_scale_.resize(slots * c.kv_heads);
      v_scale_.resize(slots * c.kv_heads);
    }
    cache_ = {.k = k_.data(),
              .v = v_.data(),
              .k_scale = k_scale_.empty() ? nullptr : k_scale_.data(),
              .v_scale = v_scale_.empty() ? nullptr : v_scale_.data(),
              .type = type,
              .num_blocks = blocks,
              .block_size = c.block_size,
              .kv_heads = c.kv_heads,
              .head_dim = c.head_dim};
    std::vector<int32_t> all(slots);
    std::iota(all.begin(), all.end(), 0);
    WriteRandom(all, rng);  // the stale values
    int next = 0;
    tables_.resize(c.seqs.size());
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      const Seq& seq = c.seqs[s];
      for (int b = 0; b < BlocksFor(seq.context); ++b) {
        tables_[s].push_back(pool[next++]);
      }
      std::vector<int32_t> seq_slots(seq.context);
      for (int p = 0; p < seq.context; ++p) seq_slots[p] = Slot(s, p);
      WriteRandom(seq_slots, rng);
      for (int p = seq.context - seq.queries; p < seq.context; ++p) {
        positions_.push_back(p);
        token_tables_.push_back(tables_[s].data());
        token_seq_.push_back(static_cast<int>(s));
      }
    }
    q_stride_ = q_width() + 3;  // rows wider than the heads, as in fused QKV
    q_.resize(size_t(m()) * q_stride_);
    for (float& x : q_) x = c.q_scale * dist(rng);
  }

  int m() const { return static_cast<int>(positions_.size()); }
  int q_width() const { return c_.num_heads * c_.head_dim; }
  const std::vector<int32_t>& positions() const { return positions_; }

  std::vector<float> Tiled() const { return Run(PagedAttention); }
  std::vector<float> PerToken() const { return Run(PerTokenPagedAttention); }

  // TiledAttention called directly on `runs`; other tokens' rows stay NaN.
  std::vector<float> TiledOnly(const std::vector<QueryRun>& runs) const {
    std::vector<float> out(size_t(m()) * q_width(), NAN);
    WithType([&](auto tag) {
      TiledAttention<decltype(tag)>(q_.data(), q_stride_, c_.num_heads, cache_,
                                    positions_.data(), token_tables_.data(),
                                    runs, out.data());
    });
    return out;
  }

  // Token t, head h: softmax(q k^T / sqrt(d)) v over positions [0, pos] in
  // double precision, on the K/V the cache holds.
  std::vector<double> Reference(int t, int h) const {
    const int hd = c_.head_dim, kvh = h / group_, ctx = positions_[t] + 1;
    const float* qh = q_.data() + size_t(t) * q_stride_ + size_t(h) * hd;
    std::vector<double> scores(ctx);
    double mx = -1e300;
    for (int j = 0; j < ctx; ++j) {
      double s = 0;
      for (int d = 0; d < hd; ++d)
        s += double(qh[d]) * Cached(k_, t, j, kvh, d);
      scores[j] = s / std::sqrt(double(hd));
      mx = std::max(mx, scores[j]);
    }
    double sum = 0;
    for (double& s : scores) sum += (s = std::exp(s - mx));
    std::vector<double> out(hd, 0.0);
    for (int j = 0; j < ctx; ++j) {
      for (int d = 0; d < hd; ++d) {
        out[d] += scores[j] / sum * Cached(v_, t, j, kvh, d);
      }
    }
    return out;
  }

 private:
  int BlocksFor(int context) const {
    return (context + c_.block_size - 1) / c_.block_size;
  }
  int32_t Slot(size_t seq, int pos) const {
    return tables_[seq][pos / c_.block_size] * c_.block_size +
           pos % c_.block_size;
  }
  void WriteRandom(const std::vector<int32_t>& slots, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> k(slots.size() * row_), v(k.size());
    for (float& x : k) x = dist(rng);
    for (float& x : v) x = dist(rng);
    WriteKv(k.data(), v.data(), row_, static_cast<int>(slots.size()),
            slots.data(), cache_);
  }
  template <typename F>
  void WithType(F&& f) const {
    WithElementType(cache_.type, std::forward<F>(f));
  }
  // Element d of KV head kvh at position j of token t's sequence, as the
  // kernels see it (int8: times its scale).
  double Cached(const std::vector<uint8_t>& kv, int t, int j, int kvh,
                int d) const {
    const size_t slot = Slot(token_seq_[t], j);
    const size_t i = slot * row_ + size_t(kvh) * c_.head_dim + d;
    double x = 0;
    WithType([&](auto tag) {
      using T = decltype(tag);
      x = ToFloat(reinterpret_cast<const T*>(kv.data())[i]);
    });
    if (cache_.type == KvType::kInt8) {
      const auto& scales = &kv == &k_ ? k_scale_ : v_scale_;
      x *= scales[slot * c_.kv_heads + kvh];
    }
    return x;
  }
  std::vector<float> Run(decltype(&PagedAttention) kernel) const {
    std::vector<float> out(size_t(m()) * q_width(), NAN);
    kernel(q_.data(), q_stride_, m(), c_.num_heads, cache_, positions_.data(),
           token_tables_.data(), out.data());
    return out;
  }

  TiledCase c_;
  int group_, row_, q_stride_ = 0;
  std::vector<uint8_t> k_, v_;  // the cache's bytes, of any type
  std::vector<float> k_scale_, v_scale_;
  PagedKvLayer cache_;
  std::vector<std::vector<int>> tables_;
  std::vector<int32_t> positions_;
  std::vector<const int32_t*> token_tables_;
  std::vector<int> token_seq_;
  std::vector<float> q_;
};

// max_d |a_d - b_d| / max_d |b_d| over one (token, head) vector.
template <typename A, typename B>
double RelativeError(const A* a, const B* b, int n) {
  double err = 0, scale = 0;
  for (int d = 0; d < n; ++d) {
    err = std::max(err, std::fabs(double(a[d]) - double(b[d])));
    scale = std::max(scale, std::fabs(double(b[d])));
  }
  return err / scale;
}

class TiledAttentionTest
    : public ::testing::TestWithParam<std::tuple<TiledCase, KvType>> {};

TEST_P(TiledAttentionTest, MatchesPerTokenKernelAndDoubleReference) {
  const auto& [c, type] = GetParam();
  const Problem problem(c, type);
  const std::vector<float> tiled = problem.Tiled();
  const std::vector<float> per_token = problem.PerToken();
  // Both kernels read the same cache; they differ only in fp32 rounding
  // (and, for int8, in where the scales are applied).
  const double kernel_tol = type == KvType::kF32 ? 1e-5 : 1e-4;
  const double reference_tol = 2e-5;
  double worst_kernel = 0, worst_reference = 0;
  for (int t = 0; t < problem.m(); ++t) {
    for (int h = 0; h < c.num_heads; ++h) {
      const size_t at = size_t(t) * problem.q_width() + size_t(h) * c.head_dim;
      const double vs_kernel =
          RelativeError(&tiled[at], &per_token[at], c.head_dim);
      const std::vector<double> ref = problem.Reference(t, h);
      const double vs_reference =
          RelativeError(&tiled[at], ref.data(), c.head_dim);
      ASSERT_LE(vs_kernel, kernel_tol)
          << "token " << t << " (position " << problem.positions()[t]
          << ") head " << h;
      ASSERT_LE(vs_reference, reference_tol)
          << "token " << t << " (position " << problem.positions()[t]
          << ") head " << h;
      worst_kernel = std::max(worst_kernel, vs_kernel);
      worst_reference = std::max(worst_reference, vs_reference);
    }
  }
  RecordProperty("worst_vs_per_token", std::to_string(worst_kernel));
  RecordProperty("worst_vs_reference", std::to_string(worst_reference));
}

const TiledCase kCases[] = {
    // Qwen2.5-0.5B's heads: a chunk starting mid-block at the end of a 4k
    // context, then a decode of a one-token sequence.
    {"QwenShapeChunkAfter4k", 14, 2, 64, 16, {{4096, 40}, {1, 1}}, 1.0f},
    // Block size 1 (every key its own block), prefills between decodes.
    {"BlockSize1Mixed", 8, 2, 64, 1, {{1500, 25}, {300, 1}, {700, 9}}, 1.0f},
    // Block size 32, no GQA: a whole prompt from position 0, runs of 3 (the
    // per-token kernel) and 4 (the tiled one), decodes in between.
    {"BlockSize32Mixed",
     4,
     4,
     64,
     32,
     {{20, 1}, {2048, 64}, {513, 1}, {100, 100}, {50, 3}, {40, 4}},
     1.0f},
    // A head size of no whole vector, tiles shorter than a block.
    {"OddHeadDim", 6, 3, 13, 16, {{77, 77}, {200, 19}}, 1.0f},
    // Group 8 and large scores: the running max moves by tens, and the
    // rescaling of what was accumulated before must keep up.
    {"PeakyScoresGroup8", 8, 1, 64, 16, {{3000, 33}}, 16.0f},
    {"HeadDim128", 4, 2, 128, 16, {{1000, 20}, {999, 1}}, 2.0f},
};

INSTANTIATE_TEST_SUITE_P(
    Cases, TiledAttentionTest,
    ::testing::Combine(::testing::ValuesIn(kCases),
                       ::testing::Values(KvType::kF32, KvType::kBF16,
                                         KvType::kF16, KvType::kInt8)),
    [](const auto& info) {
      return std::get<0>(info.param).name + "_" +
             std::string(KvTypeName(std::get<1>(info.param)));
    });

// PagedAttention gives runs of >= 4 consecutive tokens of one sequence to
// the tiled kernel (bit for bit what a direct call gives) and every other
// token to the per-token kernel; the two kernels' roundings differ, which is
// what lets this test tell them apart.
TEST(TiledAttentionDispatchTest, RunsGoToTiledKernelOthersToPerToken) {
  const TiledCase c{"",  4, 2, 64, 16, {{300, 30}, {9, 1}, {60, 3}, {80, 4}},
                    1.0f};
  const Problem problem(c, KvType::kF32);
  const std::vector<float> dispatched = problem.Tiled();
  const std::vector<float> per_token = problem.PerToken();
  // Tokens 0-29, 30, 31-33, 34-37 of the call.
  const std::vector<float> tiled = problem.TiledOnly({{0, 30}, {34, 4}});
  const int w = problem.q_width();
  auto row_equal = [&](const std::vector<float>& a, const std::vector<float>& b,
                       int t) {
    return std::memcmp(&a[size_t(t) * w], &b[size_t(t) * w],
                       sizeof(float) * w) == 0;
  };
  int differing = 0;
  for (int t = 0; t < problem.m(); ++t) {
    const bool in_run = t < 30 || t >= 34;
    EXPECT_TRUE(row_equal(dispatched, in_run ? tiled : per_token, t))
        << "token " << t;
    if (in_run && !row_equal(tiled, per_token, t)) ++differing;
  }
  EXPECT_GT(differing, 0) << "the kernels agree bit for bit: this test "
                             "cannot tell which one ran";
}

}  // namespace
}  // namespace hydra::cpu
