#include "worker/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace hydra::cpu {
namespace {

struct AttentionCase {
  int num_heads, kv_heads, head_dim, block_size;
  std::vector<int> context_lens;  // per sequence
  std::vector<int> query_lens;    // last query_len positions are queried
};

class PagedAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

// Causal attention on contiguous per-sequence K/V, in double precision.
std::vector<double> Reference(const std::vector<float>& q, int q_stride,
                              const std::vector<float>& k,
                              const std::vector<float>& v, int start, int pos,
                              int h, int group, int head_dim, int kv_heads) {
  const int kvh = h / group;
  std::vector<double> scores(pos + 1);
  double mx = -1e300;
  for (int j = 0; j <= pos; ++j) {
    double s = 0;
    for (int d = 0; d < head_dim; ++d) {
      s += double(q[size_t(start) * q_stride + h * head_dim + d]) *
           k[(size_t(j) * kv_heads + kvh) * head_dim + d];
    }
    scores[j] = s / std::sqrt(double(head_dim));
    mx = std::max(mx, scores[j]);
  }
  double sum = 0;
  for (double& s : scores) sum += (s = std::exp(s - mx));
  std::vector<double> out(head_dim, 0.0);
  for (int j = 0; j <= pos; ++j) {
    for (int d = 0; d < head_dim; ++d) {
      out[d] +=
          scores[j] / sum * v[(size_t(j) * kv_heads + kvh) * head_dim + d];
    }
  }
  return out;
}

TEST_P(PagedAttentionTest, MatchesContiguousReference) {
  const AttentionCase c = GetParam();
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int row = c.kv_heads * c.head_dim;
  const int nseq = static_cast<int>(c.context_lens.size());

  // Scatter each sequence over a shuffled pool of blocks.
  int total_blocks = 0;
  for (int len : c.context_lens)
    total_blocks += (len + c.block_size - 1) / c.block_size;
  total_blocks += 3;
  std::vector<int> pool(total_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<float> kc(size_t(total_blocks) * c.block_size * row);
  std::vector<float> vc(kc.size());
  for (float& x : kc) x = dist(rng);  // stale data in unused slots, never zeros
  for (float& x : vc) x = dist(rng);
  PagedKvLayer cache{.k = kc.data(),
                     .v = vc.data(),
                     .num_blocks = total_blocks,
                     .block_size = c.block_size,
                     .kv_heads = c.kv_heads,
                     .head_dim = c.head_dim};

  std::vector<std::vector<int>> tables(nseq);
  std::vector<std::vector<float>> k(nseq), v(nseq);
  int next = 0;
  std::vector<int32_t> positions;
  std::vector<const int32_t*> token_tables;
  std::vector<int> token_seq;
  for (int s = 0; s < nseq; ++s) {
    const int len = c.context_lens[s];
    for (int b = 0; b < (len + c.block_size - 1) / c.block_size; ++b) {
      tables[s].push_back(pool[next++]);
    }
    k[s].resize(size_t(len) * row);
    v[s].resize(size_t(len) * row);
    for (float& x : k[s]) x = dist(rng);
    for (float& x : v[s]) x = dist(rng);
    std::vector<int32_t> slots(len);
    for (int p = 0; p < len; ++p) {
      slots[p] = tables[s][p / c.block_size] * c.block_size + p % c.block_size;
    }
    WriteKv(k[s].data(), v[s].data(), row, len, slots.data(), cache);
  }
  for (int s = 0; s < nseq; ++s) {
    for (int p = c.context_lens[s] - c.query_lens[s]; p < c.context_lens[s];
         ++p) {
      positions.push_back(p);
      token_tables.push_back(tables[s].data());
      token_seq.push_back(s);
    }
  }
  const int m = static_cast<int>(positions.size());
  const int q_width = c.num_heads * c.head_dim;
  const int q_stride =
      q_width + 5;  // rows wider than the heads, as in fused QKV
  std::vector<float> q(size_t(m) * q_stride);
  for (float& x : q) x = dist(rng);
  std::vector<float> out(size_t(m) * q_width);
  PagedAttention(q.data(), q_stride, m, c.num_heads, cache, positions.data(),
                 token_tables.data(), out.data());

  const int group = c.num_heads / c.kv_heads;
  for (int t = 0; t < m; ++t) {
    for (int h = 0; h < c.num_heads; ++h) {
      const auto ref =
          Reference(q, q_stride, k[token_seq[t]], v[token_seq[t]], t,
                    positions[t], h, group, c.head_dim, c.kv_heads);
      for (int d = 0; d < c.head_dim; ++d) {
        ASSERT_NEAR(out[size_t(t) * q_width + h * c.head_dim + d], ref[d], 2e-5)
            << "token " << t << " head " << h << " dim " << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PagedAttentionTest,
    ::testing::Values(
        // stories15M-like heads, one decode and one prefill chunk.
        AttentionCase{6, 6, 48, 16, {37, 20}, {1, 7}},
        // grouped-query attention, odd head size, block size 1.
        AttentionCase{8, 2, 13, 1, {9, 5, 1}, {9, 1, 1}},
        // block size not dividing the contexts, head size under one vector.
        AttentionCase{4, 4, 7, 5, {23, 11}, {3, 11}},
        AttentionCase{12, 4, 64, 16, {130}, {130}}));

}  // namespace
}  // namespace hydra::cpu
