// The forward pass reproduces an independent reference implementation's
// greedy outputs for stories15M, one sequence at a time.
#include <algorithm>
#include <numeric>

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

}  // namespace
}  // namespace hydra::worker
