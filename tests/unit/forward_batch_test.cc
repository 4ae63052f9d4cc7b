// Batching and paging change nothing: the golden prompts decoded together,
// with tiny or normal blocks scattered over the pool and prompts prefilled
// in chunks, give the single-sequence tokens and logits.
#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "tests/unit/batch_decode.h"
#include "tests/unit/test_model.h"

namespace hydra::worker {
namespace {

struct BatchCase {
  int block_size;
  int prefill_chunk;
};

class ForwardBatchTest : public ::testing::TestWithParam<BatchCase> {};

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST_P(ForwardBatchTest, BatchedPagedChunkedMatchesSingleSequence) {
  HYDRA_REQUIRE_MODEL();
  const auto golden = testing::LoadGolden();
  std::vector<std::vector<int>> prompts;
  for (const auto& c : golden) prompts.push_back(c.prompt_ids);

  // Reference: each prompt alone, whole-prompt prefill, block size 16.
  auto single = ModelRunner::Load(testing::ModelDir(), 16, 16);
  ASSERT_TRUE(single.ok()) << single.status();
  std::vector<testing::DecodeResult> alone;
  for (const auto& p : prompts) {
    alone.push_back(testing::GreedyDecodeBatch(**single, {p}, 1 << 20, 7)[0]);
  }

  const BatchCase param = GetParam();
  const int per_seq = (256 + param.block_size - 1) / param.block_size;
  // A few spare blocks so the shuffled tables do not simply tile the pool.
  auto batched = ModelRunner::Load(testing::ModelDir(), param.block_size,
                                   per_seq * int(prompts.size()) + 5);
  ASSERT_TRUE(batched.ok()) << batched.status();
  const auto together =
      testing::GreedyDecodeBatch(**batched, prompts, param.prefill_chunk, 42);

  for (size_t s = 0; s < prompts.size(); ++s) {
    SCOPED_TRACE(golden[s].prompt);
    EXPECT_EQ(together[s].output_ids, alone[s].output_ids);
    EXPECT_EQ(together[s].output_ids, golden[s].output_ids);
    ASSERT_EQ(together[s].logits.size(), alone[s].logits.size());
    float worst = 0.0f;
    for (size_t t = 0; t < alone[s].logits.size(); ++t) {
      worst = std::max(worst,
                       MaxAbsDiff(together[s].logits[t], alone[s].logits[t]));
    }
    EXPECT_LE(worst, 1e-4f);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ForwardBatchTest,
    ::testing::Values(BatchCase{16, 1 << 20}, BatchCase{1, 1 << 20},
                      BatchCase{16, 3}, BatchCase{1, 3}),
    [](const auto& info) {
      return "block" + std::to_string(info.param.block_size) + "_chunk" +
             (info.param.prefill_chunk > 1000
                  ? std::string("all")
                  : std::to_string(info.param.prefill_chunk));
    });

}  // namespace
}  // namespace hydra::worker
