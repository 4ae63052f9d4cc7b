// The CUDA worker's host-side planning, which needs no GPU: graph batch
// buckets, FlashDecoding splits, KV pool sizing, workspace layout, step
// metadata packing and device choice by local rank.
#include <cstdlib>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/cuda/launch_plan.h"
#include "worker/step_plan_builder.h"

namespace hydra::gpu {
namespace {

using ::testing::ElementsAre;

TEST(GraphBatchSizesTest, PowersOfTwoThenMultiplesOfSixteen) {
  EXPECT_THAT(GraphBatchSizes(40), ElementsAre(1, 2, 4, 8, 16, 32, 40));
  EXPECT_THAT(GraphBatchSizes(64), ElementsAre(1, 2, 4, 8, 16, 32, 48, 64));
  EXPECT_THAT(GraphBatchSizes(3), ElementsAre(1, 2, 3));
  EXPECT_TRUE(GraphBatchSizes(0).empty());
  EXPECT_EQ(GraphBatchSizes(256).size(), 4u + 16u);
}

TEST(GraphBatchSizesTest, BucketIsTheSmallestSizeThatFits) {
  const std::vector<int> sizes = GraphBatchSizes(64);
  EXPECT_EQ(GraphBucket(sizes, 1), 1);
  EXPECT_EQ(GraphBucket(sizes, 3), 4);
  EXPECT_EQ(GraphBucket(sizes, 9), 16);
  EXPECT_EQ(GraphBucket(sizes, 33), 48);
  EXPECT_EQ(GraphBucket(sizes, 64), 64);
  EXPECT_EQ(GraphBucket(sizes, 65), 0);  // eager
}

TEST(DecodeSplitTest, FillsTheMachineWithoutTinyChunks) {
  // One token, 32 heads, 132 SMs: ~9 splits wanted, chunks of >= 256.
  DecodeSplit s = PlanDecodeSplit(1, 32, 8192, 16, 132);
  EXPECT_EQ(s.chunk_tokens % 16, 0);
  EXPECT_GE(s.chunk_tokens, 256);
  EXPECT_EQ(s.max_splits, (8192 + s.chunk_tokens - 1) / s.chunk_tokens);
  EXPECT_GE(s.max_splits, 8);
  EXPECT_LE(s.max_splits, 9);
  // A big batch already fills the machine: one chunk per context.
  s = PlanDecodeSplit(256, 32, 2048, 16, 132);
  EXPECT_EQ(s.max_splits, 1);
  EXPECT_EQ(s.chunk_tokens, 2048);
  // Short contexts are never split below the minimum chunk.
  s = PlanDecodeSplit(1, 8, 100, 16, 132);
  EXPECT_EQ(s.max_splits, 1);
  EXPECT_EQ(s.chunk_tokens, 256);
}

TEST(DecodeSplitTest, CapBoundsTheSplits) {
  const DecodeSplit s = PlanDecodeSplit(1, 1, 131072, 16, 132, 256, 64);
  EXPECT_LE(s.max_splits, 64);
  EXPECT_GE(int64_t{s.chunk_tokens} * s.max_splits, 131072);
}

TEST(DecodeSplitTest, SplitsForCountsChunks) {
  const DecodeSplit s{256, 8};
  EXPECT_EQ(SplitsFor(s, 0), 0);
  EXPECT_EQ(SplitsFor(s, 1), 1);
  EXPECT_EQ(SplitsFor(s, 256), 1);
  EXPECT_EQ(SplitsFor(s, 257), 2);
}

TEST(KvPoolBytesTest, KeepsTheUnusedFractionOfTheDeviceFree) {
  const size_t gib = size_t(1) << 30;
  auto pool = KvPoolBytes(100 * gib, 80 * gib, 0.9);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(*pool, 70 * gib);
  pool = KvPoolBytes(100 * gib, 80 * gib, 1.0);
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(*pool, 80 * gib);
}

TEST(KvPoolBytesTest, RefusesBadFractionsAndFullDevices) {
  EXPECT_EQ(KvPoolBytes(100, 50, 0.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KvPoolBytes(100, 50, 1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  const auto full = KvPoolBytes(100, 5, 0.9);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()),
              ::testing::HasSubstr("fraction"));
}

TEST(WorkspaceLayoutTest, AlignsEveryBuffer) {
  WorkspaceLayout layout;
  EXPECT_EQ(layout.Add(10), 0u);
  EXPECT_EQ(layout.Add(256), 256u);
  EXPECT_EQ(layout.Add(1), 512u);
  EXPECT_EQ(layout.total_bytes(), 768u);
}

internal::StepPlan MixedPlan() {
  // Sequence 0: a 10-token prefill chunk at positions 0..9; sequence 1: one
  // decode token at position 20; sequence 2: a 3-token chunk at 16..18.
  worker::StepPlanBuilder builder(16);
  const std::vector<int> prompt(10, 7), decode{5}, chunk{1, 2, 3};
  builder.Add(prompt, 0, std::vector<int>{4}, true);
  builder.Add(decode, 20, std::vector<int>{9, 2}, true);
  builder.Add(chunk, 16, std::vector<int>{3, 6}, false);
  return builder.Take();
}

TEST(PackStepTest, FlattensAMixedBatch) {
  const auto m = PackStep(MixedPlan(), {.tile_rows = 4});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_tokens, 14);
  EXPECT_EQ(m->capacity, 14);
  EXPECT_EQ(m->num_seqs, 3);
  EXPECT_EQ(m->blocks_per_seq, 2);
  EXPECT_EQ(m->max_context, 21);
  const int32_t* d = m->data.data();
  EXPECT_EQ(d[m->positions() + 10], 20);
  EXPECT_EQ(d[m->slots() + 10], 2 * 16 + 4);
  EXPECT_EQ(d[m->token_seq() + 12], 2);
  // Decode: token 10. Prefill tiles of 4: tokens 0, 4, 8 (sequence 0) and
  // 11 (sequence 2).
  ASSERT_EQ(m->num_decode, 1);
  EXPECT_EQ(d[m->decode_tokens()], 10);
  ASSERT_EQ(m->num_prefill_tiles, 4);
  EXPECT_EQ(d[m->prefill_tiles() + 0], 0);
  EXPECT_EQ(d[m->prefill_tiles() + 2], 8);
  EXPECT_EQ(d[m->prefill_tiles() + 3], 11);
  ASSERT_EQ(m->num_logits, 2);
  EXPECT_EQ(d[m->logits_rows()], 9);
  EXPECT_EQ(d[m->logits_rows() + 1], 10);
  // Block tables, zero padded to the widest.
  EXPECT_EQ(d[m->block_tables() + 0], 4);
  EXPECT_EQ(d[m->block_tables() + 1], 0);
  EXPECT_EQ(d[m->block_tables() + 2], 9);
  EXPECT_EQ(d[m->block_tables() + 3], 2);
  EXPECT_EQ(m->data.size(), StepMetadata::Size(14, 3, 2));
}

TEST(PackStepTest, PadsADecodeBatchForAGraph) {
  worker::StepPlanBuilder builder(16);
  const std::vector<int> one{3};
  builder.Add(one, 5, std::vector<int>{1}, true);
  builder.Add(one, 17, std::vector<int>{2, 8}, true);
  const internal::StepPlan plan = builder.Take();
  ASSERT_TRUE(IsPureDecode(plan));
  const auto m =
      PackStep(plan, {.capacity = 4, .seq_capacity = 4, .blocks_per_seq = 16});
  ASSERT_TRUE(m.ok()) << m.status();
  const int32_t* d = m->data.data();
  EXPECT_EQ(m->num_decode, 2);
  // Padding rows: no position, no slot, and listed after the real decode
  // tokens so a padded launch covers them.
  EXPECT_EQ(d[m->positions() + 2], -1);
  EXPECT_EQ(d[m->slots() + 3], -1);
  EXPECT_EQ(d[m->decode_tokens() + 2], 2);
  EXPECT_EQ(d[m->decode_tokens() + 3], 3);
  EXPECT_EQ(d[m->block_tables() + 16], 2);
  EXPECT_EQ(d[m->block_tables() + 17], 8);
}

// Speculative decoding: a decode that verifies 4 drafts computes 5 query
// tokens with a logits row each. Such a step is not replayed from a decode
// graph (which assumes one token per sequence): it runs eagerly, its
// tokens in the prefill tiles.
TEST(PackStepTest, ADecodeWithDraftsTakesTheEagerPath) {
  worker::StepPlanBuilder builder(16);
  builder.Add(std::vector<int>{3}, 5, std::vector<int>{1}, true);
  builder.Add(std::vector<int>{4, 9, 9, 7, 2}, 17, std::vector<int>{2, 8},
              true);
  internal::StepPlan plan = builder.Take();
  plan.clear_logits_rows();
  for (int r = 0; r < 6; ++r) plan.add_logits_rows(r);
  EXPECT_FALSE(IsPureDecode(plan));
  const auto m = PackStep(plan, {.tile_rows = 8, .blocks_per_seq = 16});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_logits, 6);
  EXPECT_EQ(m->num_decode, 1);  // only the plain decode
  EXPECT_EQ(m->num_prefill_tiles, 1);
  EXPECT_EQ(m->data[m->prefill_tiles()], 1);
}

TEST(PackStepTest, RefusesPlansBeyondTheCapacity) {
  EXPECT_FALSE(PackStep(MixedPlan(), {.capacity = 8}).ok());
  EXPECT_FALSE(PackStep(MixedPlan(), {.blocks_per_seq = 1}).ok());
  EXPECT_FALSE(IsPureDecode(MixedPlan()));
}

TEST(DeviceForLocalRankTest, ReadsTheLauncherEnvironment) {
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "5", 1);
  EXPECT_EQ(DeviceForLocalRank(4), 1);
  EXPECT_EQ(DeviceForLocalRank(8), 5);
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  setenv("SLURM_LOCALID", "2", 1);
  EXPECT_EQ(DeviceForLocalRank(8), 2);
  unsetenv("SLURM_LOCALID");
  EXPECT_EQ(DeviceForLocalRank(8), 0);
  EXPECT_EQ(DeviceForLocalRank(0), 0);
}

}  // namespace
}  // namespace hydra::gpu
