#include "gtest/gtest.h"
#include "model/config.h"
#include "worker/weights.h"

namespace hydra::worker {
namespace {

model::ModelConfig Stories15M() {
  model::ModelConfig c;
  c.hidden_size = 288;
  c.intermediate_size = 768;
  c.num_heads = 6;
  c.num_kv_heads = 6;
  c.head_dim = 48;
  c.vocab_size = 32000;
  return c;
}

TEST(ShardTest, IndivisibleHeadCountIsRefusedWithTheSizesThatWork) {
  const absl::Status s = Shard::Check(Stories15M(), 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("sizes that work: 1, 2, 3, 6"), std::string::npos)
      << s;
  for (int n : {1, 2, 3, 6})
    EXPECT_TRUE(Shard::Check(Stories15M(), n).ok()) << n;
}

TEST(ShardTest, VocabularySlicesCoverEveryTokenOnce) {
  const model::ModelConfig c = Stories15M();
  for (int n : {1, 2, 3, 6}) {
    int covered = 0;
    for (int r = 0; r < n; ++r) {
      const Shard shard{r, n};
      EXPECT_EQ(shard.vocab_begin(c), covered);
      covered = shard.vocab_end(c);
      EXPECT_LE(shard.vocab_end(c) - shard.vocab_begin(c),
                shard.vocab_per_rank(c));
    }
    EXPECT_EQ(covered, c.vocab_size) << n;
  }
}

}  // namespace
}  // namespace hydra::worker
