// The forward pass reproduces an independent reference implementation's
// greedy outputs for stories15M, one sequence at a time.
#include <algorithm>
#include <numeric>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/batch_decode.h"
#include "tests/unit/test_model.h"

namespace hydra::worker {
namespace {

TEST(ForwardGoldenTest, GreedyDecodingMatchesReference) {
  HYDRA_REQUIRE_MODEL();
  auto runner = ModelRunner::Load(testing::ModelDir(), /*block_size=*/16,
                                  /*num_blocks=*/16);
  ASSERT_TRUE(runner.ok()) << runner.status();
  for (const auto& c : testing::LoadGolden()) {
    SCOPED_TRACE(c.prompt);
    const auto result =
        testing::GreedyDecodeBatch(**runner, {c.prompt_ids},
                                   /*prefill_chunk=*/1 << 20, 1);
    ASSERT_EQ(result.size(), 1u);
    EXPECT_EQ(result[0].output_ids, c.output_ids);

    // The five largest first-step logits, by id and value.
    const std::vector<float>& first = result[0].logits.at(0);
    std::vector<int> order(first.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int a, int b) { return first[a] > first[b]; });
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(order[i], c.first_step_top5[i].first) << "rank " << i;
      EXPECT_NEAR(first[c.first_step_top5[i].first],
                  c.first_step_top5[i].second, 1e-3)
          << "token " << c.first_step_top5[i].first;
    }
  }
}

// Half-precision and int8 KV caches against the same golden outputs: bf16
// and f16 K/V keep stories15M's greedy tokens exactly and the first-step
// top-5 logits within 0.06 (bf16 measured up to 0.034); int8 K/V within 0.1
// and at least the first 16 greedy tokens.
class ForwardKvTypeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardKvTypeTest, GreedyTokensMatchTheFp32Golden) {
  HYDRA_REQUIRE_MODEL();
  const std::string kv = GetParam();
  auto runner = ModelRunner::Load(
      testing::ModelDir(),
      {.block_size = 16, .num_blocks = 16, .kv_cache_dtype = kv});
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_EQ((*runner)->kv_cache_dtype(), kv);
  for (const auto& c : testing::LoadGolden()) {
    SCOPED_TRACE(c.prompt);
    const auto result =
        testing::GreedyDecodeBatch(**runner, {c.prompt_ids}, 1 << 20, 1);
    ASSERT_EQ(result.size(), 1u);
    const std::vector<int>& got = result[0].output_ids;
    if (kv == "int8") {
      size_t same = 0;
      while (same < got.size() && same < c.output_ids.size() &&
             got[same] == c.output_ids[same]) {
        ++same;
      }
      EXPECT_GE(same, std::min<size_t>(16, c.output_ids.size()));
    } else {
      EXPECT_EQ(got, c.output_ids);
    }
    const std::vector<float>& first = result[0].logits.at(0);
    for (const auto& [id, value] : c.first_step_top5) {
      EXPECT_NEAR(first[id], value, kv == "int8" ? 0.1 : 0.06)
          << "token " << id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KvTypes, ForwardKvTypeTest,
                         ::testing::Values("bf16", "f16", "int8"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace hydra::worker
