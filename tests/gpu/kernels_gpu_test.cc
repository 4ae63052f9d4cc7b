// Every device kernel against its CPU counterpart on random inputs, in FP32
// (relative error <= 1e-5) and BF16 (<= 1e-2; inputs rounded to BF16 first
// so both sides see the same values).
#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"
#include "worker/cpu/kernels.h"
#include "worker/cpu/paged_attention.h"
#include "worker/cuda/gemm.h"
#include "worker/cuda/launch_plan.h"
#include "worker/step_plan_builder.h"

namespace hydra::gpu {
namespace {

using testing::Download;
using testing::Random;
using testing::RelativeError;
using testing::Round;
using testing::Tolerance;
using testing::Upload;
using testing::UploadInts;

template <typename T>
class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override { HYDRA_REQUIRE_GPU(); }
};
using StorageTypes = ::testing::Types<float, bf16>;
TYPED_TEST_SUITE(KernelTest, StorageTypes);

TYPED_TEST(KernelTest, EmbeddingIsVocabularyParallel) {
  using T = TypeParam;
  const int dim = 72, begin = 10, end = 40, m = 6;
  const auto table = Round<T>(Random(size_t(end - begin) * dim, 1));
  const std::vector<int32_t> ids = {10, 0, 39, 40, 25, 3};
  auto d_table = Upload<T>(table);
  auto d_ids = UploadInts(ids);
  auto d_x = Upload<float>(std::vector<float>(m * dim, 7.0f));
  ASSERT_EQ(EmbeddingLookup<T>(d_table.data(), d_ids.data(), m, dim, begin, end,
                               d_x.data(), nullptr),
            cudaSuccess);
  std::vector<float> want(m * dim, 0.0f);
  cpu::EmbeddingLookup(cpu::PackedMatrix(table, end - begin, dim), begin,
                       ids.data(), m, want.data());
  EXPECT_LE(RelativeError(Download(d_x), want), Tolerance<T>());
}

TYPED_TEST(KernelTest, RmsNorm) {
  using T = TypeParam;
  const int m = 5, dim = 300;
  const auto x = Random(m * dim, 2, 3.0f), w = Random(dim, 3);
  auto d_x = Upload<float>(x);
  auto d_w = Upload<float>(w);
  auto d_out = Upload<T>(std::vector<float>(m * dim));
  ASSERT_EQ(
      RmsNorm<T>(d_x.data(), d_w.data(), m, dim, 1e-5f, d_out.data(), nullptr),
      cudaSuccess);
  std::vector<float> want(m * dim);
  cpu::RmsNorm(x.data(), w.data(), m, dim, 1e-5f, want.data());
  EXPECT_LE(RelativeError(Download(d_out), want), Tolerance<T>());
}

TYPED_TEST(KernelTest, RopeRotateHalf) {
  using T = TypeParam;
  const int m = 4, heads = 3, hd = 48, stride = heads * hd + 16;
  const cpu::RopeTable table(256, hd, 10000.0f, model::RopeScaling{});
  const std::vector<int32_t> positions = {0, 7, 100, 255};
  auto x = Round<T>(Random(m * stride, 4));
  auto d_x = Upload<T>(x);
  auto d_pos = UploadInts(positions);
  const size_t n = 256 * hd / 2;
  auto d_cos =
      Upload<float>(std::vector<float>(table.cos(0), table.cos(0) + n));
  auto d_sin =
      Upload<float>(std::vector<float>(table.sin(0), table.sin(0) + n));
  ASSERT_EQ(ApplyRope<T>(d_x.data(), m, stride, heads, hd, d_pos.data(),
                         d_cos.data(), d_sin.data(), nullptr),
            cudaSuccess);
  cpu::ApplyRope(x.data(), m, stride, heads, positions.data(), table);
  EXPECT_LE(RelativeError(Download(d_x), x), Tolerance<T>());
}

TYPED_TEST(KernelTest, SiluMul) {
  using T = TypeParam;
  const int m = 3, hidden = 100;
  const auto gate_up = Round<T>(Random(m * 2 * hidden, 5, 4.0f));
  auto d_in = Upload<T>(gate_up);
  auto d_out = Upload<T>(std::vector<float>(m * hidden));
  ASSERT_EQ(SiluMul<T>(d_in.data(), m, hidden, d_out.data(), nullptr),
            cudaSuccess);
  std::vector<float> want(m * hidden);
  cpu::SiluMul(gate_up.data(), m, hidden, want.data());
  EXPECT_LE(RelativeError(Download(d_out), want), Tolerance<T>());
}

TYPED_TEST(KernelTest, GemmMatchesTheCpuMatMul) {
  using T = TypeParam;
  const int k = 96, n = 80;
  const auto w = Round<T>(Random(n * k, 6));
  auto d_w = Upload<T>(w);
  const cpu::PackedMatrix packed(w, n, k);
  auto blas = Blas::Create(nullptr);
  ASSERT_TRUE(blas.ok()) << blas.status();
  for (int m : {1, 7, 33}) {
    SCOPED_TRACE(m);
    const auto x = Round<T>(Random(m * k, 7 + m));
    auto d_x = Upload<T>(x);
    auto d_y = Upload<float>(std::vector<float>(m * n));
    ASSERT_TRUE((*blas)
                    ->Gemm(d_x.data(), m, k, k, d_w.data(), n,
                           testing::DTypeOf<T>(), d_y.data(), n, DType::kF32)
                    .ok());
    std::vector<float> want(m * n);
    cpu::MatMul(x.data(), m, k, packed, nullptr, want.data(), n);
    EXPECT_LE(RelativeError(Download(d_y), want), Tolerance<T>());
  }
}

TYPED_TEST(KernelTest, AddsGathersAndAssemblesVocab) {
  using T = TypeParam;
  const int m = 5, n = 70, stride = 96;
  // AddInPlace against the CPU kernel.
  auto x = Random(m * n, 14), y = Random(m * n, 15);
  auto d_x = Upload<float>(x);
  auto d_y = Upload<float>(y);
  ASSERT_EQ(AddInPlace(d_x.data(), d_y.data(), x.size(), nullptr), cudaSuccess);
  cpu::AddInPlace(x.data(), y.data(), x.size());
  EXPECT_LE(RelativeError(Download(d_x), x), 1e-6);
  // AddBias on rows `stride` apart; the gap between rows stays untouched.
  auto rows = Round<T>(Random(m * stride, 16)), bias = Round<T>(Random(n, 17));
  auto d_rows = Upload<T>(rows);
  auto d_bias = Upload<T>(bias);
  ASSERT_EQ(AddBias<T>(d_rows.data(), d_bias.data(), m, n, stride, nullptr),
            cudaSuccess);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) rows[i * stride + j] += bias[j];
  }
  EXPECT_LE(RelativeError(Download(d_rows), rows), Tolerance<T>());
  // GatherRows: rows in any order, repeats allowed.
  const std::vector<int32_t> pick = {4, 0, 4, 2};
  auto d_pick = UploadInts(pick);
  auto d_gathered = Upload<float>(std::vector<float>(pick.size() * n));
  ASSERT_EQ(GatherRows(d_x.data(), d_pick.data(), int(pick.size()), n,
                       d_gathered.data(), nullptr),
            cudaSuccess);
  std::vector<float> want_gather;
  for (int r : pick) {
    want_gather.insert(want_gather.end(), x.begin() + r * n,
                       x.begin() + (r + 1) * n);
  }
  EXPECT_EQ(Download(d_gathered), want_gather);
  // AssembleVocab: 3 ranks of 7 (padded) columns for a vocabulary of 19.
  const int ranks = 3, per_rank = 7, vocab = 19, lrows = 2;
  const auto gathered = Random(ranks * lrows * per_rank, 18);
  auto d_all = Upload<float>(gathered);
  auto d_logits = Upload<float>(std::vector<float>(lrows * vocab));
  ASSERT_EQ(AssembleVocab(d_all.data(), ranks, lrows, per_rank, vocab,
                          d_logits.data(), nullptr),
            cudaSuccess);
  std::vector<float> want_logits(lrows * vocab);
  for (int row = 0; row < lrows; ++row) {
    for (int v = 0; v < vocab; ++v) {
      want_logits[row * vocab + v] =
          gathered[(v / per_rank * lrows + row) * per_rank + v % per_rank];
    }
  }
  EXPECT_EQ(Download(d_logits), want_logits);
}

TYPED_TEST(KernelTest, PagedAttentionMixesPrefillAndDecode) {
  using T = TypeParam;
  // Every dims-per-lane specialization (2, 4, 8), and a head size that
  // leaves lanes idle (80).
  for (const int hd : {64, 80, 128, 256}) {
    SCOPED_TRACE(hd);
    const int bs = 16, blocks = 24, kv_heads = 2, heads = 4;
    const int row = kv_heads * hd;
    // Sequence A decodes at position 150, B prefills positions 30..34, C
    // decodes its first token; block tables are scattered.
    std::vector<int> table_a(10), table_b = {17, 3, 21}, table_c = {5};
    std::iota(table_a.begin(), table_a.end(), 6);
    std::reverse(table_a.begin(), table_a.end());
    worker::StepPlanBuilder builder(bs);
    builder.Add(std::vector<int>{1}, 150, table_a, true);
    builder.Add(std::vector<int>(5, 1), 30, table_b, true);
    builder.Add(std::vector<int>{1}, 0, table_c, true);
    const internal::StepPlan plan = builder.Take();
    const int m = plan.token_ids_size();

    // Earlier context in the cache, then this step's K/V written by slot.
    auto k_cache = Round<T>(Random(size_t(blocks) * bs * row, 8));
    auto v_cache = Round<T>(Random(size_t(blocks) * bs * row, 9));
    const int qkv_width = (heads + 2 * kv_heads) * hd;
    auto qkv = Round<T>(Random(size_t(m) * qkv_width, 10));
    auto d_k = Upload<T>(k_cache);
    auto d_v = Upload<T>(v_cache);
    auto d_qkv = Upload<T>(qkv);
    cpu::PagedKvLayer cpu_cache{.k = k_cache.data(),
                                .v = v_cache.data(),
                                .num_blocks = blocks,
                                .block_size = bs,
                                .kv_heads = kv_heads,
                                .head_dim = hd};
    const float* q = qkv.data();
    cpu::WriteKv(q + heads * hd, q + heads * hd + row, qkv_width, m,
                 plan.slot_mapping().data(), cpu_cache);
    std::vector<const int32_t*> tables;
    for (const auto& seq : plan.sequences()) {
      for (int i = 0; i < seq.query_len(); ++i) {
        tables.push_back(seq.block_table().data());
      }
    }
    std::vector<float> want(size_t(m) * heads * hd);
    cpu::PagedAttention(q, qkv_width, m, heads, cpu_cache,
                        plan.positions().data(), tables.data(), want.data());

    const auto meta = PackStep(plan, {.tile_rows = 4});
    ASSERT_TRUE(meta.ok()) << meta.status();
    auto d_meta = UploadInts(meta->data);
    const int32_t* md = d_meta.data();
    DeviceKvLayer<T> cache{d_k.data(), d_v.data(), bs, kv_heads, hd};
    ASSERT_EQ(
        WriteKv<T>(d_qkv.data() + heads * hd, d_qkv.data() + heads * hd + row,
                   qkv_width, m, md + meta->slots(), cache, nullptr),
        cudaSuccess);
    EXPECT_LE(RelativeError(Download(d_k), k_cache), Tolerance<T>());
    EXPECT_LE(RelativeError(Download(d_v), v_cache), Tolerance<T>());
    AttentionBatch batch{md + meta->positions(), md + meta->token_seq(),
                         md + meta->block_tables(), meta->blocks_per_seq, m};
    // One chunk per context, then many small ones (FlashDecoding merge).
    for (int chunk : {256, 32}) {
      SCOPED_TRACE(chunk);
      const int splits = (meta->max_context + chunk - 1) / chunk;
      auto d_partial = Upload<float>(std::vector<float>(
          size_t(meta->num_decode) * heads * splits * (hd + 2)));
      auto d_out = Upload<T>(std::vector<float>(want.size(), 0.0f));
      ASSERT_EQ(PagedAttentionDecode<T>(
                    d_qkv.data(), qkv_width, heads, cache, batch,
                    md + meta->decode_tokens(), meta->num_decode, chunk, splits,
                    d_partial.data(), d_out.data(), nullptr),
                cudaSuccess);
      ASSERT_EQ(PagedAttentionPrefill<T>(d_qkv.data(), qkv_width, heads, cache,
                                         batch, md + meta->prefill_tiles(),
                                         meta->num_prefill_tiles, 4,
                                         d_out.data(), nullptr),
                cudaSuccess);
      EXPECT_LE(RelativeError(Download(d_out), want), Tolerance<T>());
    }
  }
}

TEST(SampleRowsTest, GreedyIsTheArgmaxWithItsLogprob) {
  HYDRA_REQUIRE_GPU();
  const int rows = 3, vocab = 1000;
  auto logits = Random(rows * vocab, 11, 5.0f);
  logits[vocab + 17] = logits[vocab + 500] = 9.0f;  // a tie: lower id wins
  auto d_logits = Upload<float>(logits);
  std::vector<DeviceSamplingRow> params(rows);
  auto d_params = DeviceBuffer<DeviceSamplingRow>::FromHost(params);
  ASSERT_TRUE(d_params.ok());
  auto d_tokens = UploadInts(std::vector<int32_t>(rows));
  auto d_logprobs = Upload<float>(std::vector<float>(rows));
  ASSERT_EQ(SampleRows(d_logits.data(), rows, vocab, d_params->data(),
                       d_tokens.data(), d_logprobs.data(), nullptr),
            cudaSuccess);
  const auto logprobs = Download(d_logprobs);
  std::vector<int32_t> tokens(rows);
  cudaMemcpy(tokens.data(), d_tokens.data(), rows * 4, cudaMemcpyDeviceToHost);
  for (int r = 0; r < rows; ++r) {
    std::span<const float> row(logits.data() + r * vocab, vocab);
    EXPECT_EQ(tokens[r], engine::Argmax(row));
    const float max = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (float x : row) sum += std::exp(double(x - max));
    EXPECT_NEAR(logprobs[r], row[tokens[r]] - max - std::log(sum), 1e-4);
  }
  EXPECT_EQ(tokens[1], 17);
}

TEST(SampleRowsTest, DrawsStayInsideTopKAndTopP) {
  HYDRA_REQUIRE_GPU();
  const int vocab = 500, rows = 64;
  const auto row = Random(vocab, 12, 3.0f);
  std::vector<float> logits;
  for (int r = 0; r < rows; ++r)
    logits.insert(logits.end(), row.begin(), row.end());
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return row[a] > row[b]; });
  auto d_logits = Upload<float>(logits);
  for (const auto& [top_k, top_p] : {std::pair{5, 1.0f}, std::pair{0, 1e-6f}}) {
    std::vector<DeviceSamplingRow> params(rows);
    for (int r = 0; r < rows; ++r) {
      params[r] = {.temperature = 1.0f,
                   .top_k = top_k,
                   .top_p = top_p,
                   .seed = 42,
                   .counter = uint64_t(r)};
    }
    auto d_params = DeviceBuffer<DeviceSamplingRow>::FromHost(params);
    ASSERT_TRUE(d_params.ok());
    auto d_tokens = UploadInts(std::vector<int32_t>(rows));
    ASSERT_EQ(SampleRows(d_logits.data(), rows, vocab, d_params->data(),
                         d_tokens.data(), nullptr, nullptr),
              cudaSuccess);
    std::vector<int32_t> tokens(rows);
    cudaMemcpy(tokens.data(), d_tokens.data(), rows * 4,
               cudaMemcpyDeviceToHost);
    const int allowed = top_k > 0 ? top_k : 1;
    for (int t : tokens) {
      EXPECT_NE(std::find(order.begin(), order.begin() + allowed, t),
                order.begin() + allowed)
          << "token " << t << " with top_k " << top_k << ", top_p " << top_p;
    }
  }
}

TEST(ConversionTest, Bf16RoundTripsAndMatchesTheHostRounding) {
  HYDRA_REQUIRE_GPU();
  const auto x = Random(1000, 13, 100.0f);
  auto d_x = Upload<float>(x);
  auto d_b = Upload<bf16>(std::vector<float>(x.size()));
  auto d_back = Upload<float>(std::vector<float>(x.size()));
  ASSERT_EQ(FloatToBf16(d_x.data(), x.size(), d_b.data(), nullptr),
            cudaSuccess);
  ASSERT_EQ(Bf16ToFloat(d_b.data(), x.size(), d_back.data(), nullptr),
            cudaSuccess);
  EXPECT_EQ(Download(d_back), Round<bf16>(x));
}

}  // namespace
}  // namespace hydra::gpu
