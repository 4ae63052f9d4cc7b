// Property test: thousands of random operations on the block pool, checked
// after each against its invariants and against a shadow KV cache that
// records which token each slot really holds.
#include "scheduler/block_manager.h"

#include <limits>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace hydra::scheduler {
namespace {

constexpr int kBlockSize = 4;

class BlockManagerPropertyTest : public ::testing::TestWithParam<int> {
 protected:
  BlockManagerPropertyTest()
      : blocks_(48, kBlockSize, /*enable_prefix_cache=*/true,
                /*max_pinned_blocks=*/6),
        shadow_(48 * kBlockSize, -1) {}

  // What the worker would do: write the computed tokens into their slots.
  void Compute(Sequence& seq, int upto) {
    for (int p = seq.num_computed(); p < upto; ++p) {
      const int b = seq.block_table()[p / kBlockSize];
      shadow_[b * kBlockSize + p % kBlockSize] = seq.tokens()[p];
    }
    seq.set_num_computed(upto);
    blocks_.CommitFullBlocks(seq);
  }

  // Every computed position of every live sequence reads back its token.
  void CheckShadow() {
    for (const auto& [id, seq] : live_) {
      for (int p = 0; p < seq->num_computed(); ++p) {
        const int b = seq->block_table()[p / kBlockSize];
        ASSERT_EQ(shadow_[b * kBlockSize + p % kBlockSize], seq->tokens()[p])
            << "sequence " << id << " position " << p << " block " << b;
      }
    }
  }

  std::vector<int> RandomPrompt(std::mt19937& rng) {
    // A few shared stems so prefixes repeat, then a random tail.
    static const std::vector<std::vector<int>> stems = {
        {5, 6, 7, 8, 9, 10, 11, 12},
        {5, 6, 7, 8, 1, 2, 3, 4},
        {42, 43, 44, 45}};
    std::vector<int> prompt = stems[rng() % stems.size()];
    const int tail = 1 + rng() % 9;
    for (int i = 0; i < tail; ++i) prompt.push_back(1 + rng() % 3);
    return prompt;
  }

  BlockManager blocks_;
  std::vector<int> shadow_;
  std::map<uint64_t, std::unique_ptr<Sequence>> live_;
};

TEST_P(BlockManagerPropertyTest, RandomOperationsKeepInvariants) {
  std::mt19937 rng(GetParam());
  uint64_t next_id = 1;
  int hits = 0, evictions_seen = 0, copies = 0, max_pinned = 0;
  for (int op = 0; op < 4000; ++op) {
    const int kind = rng() % 10;
    if (kind < 3 || live_.empty()) {
      // Admit a new sequence, reusing any cached prefix; one in four pins
      // its blocks.
      auto seq = std::make_unique<Sequence>(
          next_id++, RandomPrompt(rng), 0,
          rng() % 4 == 0 ? Retention::kPinned : Retention::kNormal);
      const std::vector<int> prefix = blocks_.FindCachedPrefix(*seq);
      const int cached_before = blocks_.num_cached();
      const int free_before = blocks_.num_free();
      if (blocks_.Admit(*seq, prefix, seq->num_tokens())) {
        hits += !prefix.empty();
        if (free_before == 0 && blocks_.num_cached() < cached_before)
          ++evictions_seen;
        Compute(*seq, seq->num_tokens());
        live_[seq->id()] = std::move(seq);
      }
    } else {
      auto it = live_.begin();
      std::advance(it, rng() % live_.size());
      Sequence& seq = *it->second;
      if (kind < 6) {
        // Decode one token: grow, copy-on-write if shared, compute.
        seq.AppendToken(1 + rng() % 3);
        if (blocks_.Grow(seq, seq.num_tokens())) {
          bool ok = true;
          if (auto copy =
                  blocks_.PrepareWrite(seq, seq.num_tokens() - 1, &ok)) {
            std::copy_n(&shadow_[copy->src * kBlockSize], kBlockSize,
                        &shadow_[copy->dst * kBlockSize]);
            ++copies;
          }
          if (ok) Compute(seq, seq.num_tokens());
        }
        if (seq.num_computed() < seq.num_tokens()) {
          blocks_.Free(seq);  // out of blocks: preempted
          live_.erase(it);
        }
      } else if (kind < 7) {
        // Fork: the child shares every block, then diverges.
        auto child = std::make_unique<Sequence>(
            next_id++,
            std::vector<int>(seq.tokens().begin(), seq.tokens().end()), 0);
        child->set_num_computed(0);
        blocks_.Fork(seq, *child);
        live_[child->id()] = std::move(child);
      } else {
        blocks_.Free(seq);
        live_.erase(it);
      }
    }
    std::vector<const Sequence*> holders;
    for (const auto& [id, s] : live_) holders.push_back(s.get());
    const absl::Status status = blocks_.CheckInvariants(holders);
    ASSERT_TRUE(status.ok()) << "after op " << op << ": " << status;
    ASSERT_NO_FATAL_FAILURE(CheckShadow()) << "after op " << op;
    ASSERT_EQ(blocks_.num_used() + blocks_.num_free() + blocks_.num_cached(),
              blocks_.num_blocks());
    max_pinned = std::max(max_pinned, blocks_.num_pinned());
  }
  for (auto& [id, seq] : live_) blocks_.Free(*seq);
  live_.clear();
  EXPECT_EQ(blocks_.num_used(), 0);
  EXPECT_TRUE(blocks_.CheckInvariants({}).ok());
  // The random walk must have exercised what it claims to test.
  EXPECT_GT(hits, 50);
  EXPECT_GT(copies, 10);
  EXPECT_GT(evictions_seen, 0);
  EXPECT_GT(max_pinned, blocks_.max_pinned_blocks());  // pinned evicted too
  EXPECT_GT(blocks_.prefix_hits(), 0);
  EXPECT_LE(blocks_.prefix_hits(), blocks_.prefix_queries());
}

INSTANTIATE_TEST_SUITE_P(Seeds, BlockManagerPropertyTest,
                         ::testing::Values(1, 2, 3, 4));

TEST(BlockManagerTest, PrefixHitNeverCoversTheLastToken) {
  BlockManager blocks(8, 4);
  Sequence a(1, {1, 2, 3, 4, 5, 6, 7, 8}, 0);
  ASSERT_TRUE(blocks.Admit(a, {}, 8));
  a.set_num_computed(8);
  blocks.CommitFullBlocks(a);
  blocks.Free(a);
  EXPECT_EQ(blocks.num_cached(), 2);
  // Same 8 tokens: only the first block may be reused (one token to compute).
  Sequence b(2, {1, 2, 3, 4, 5, 6, 7, 8}, 0);
  EXPECT_EQ(blocks.FindCachedPrefix(b).size(), 1u);
  Sequence c(3, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 0);
  EXPECT_EQ(blocks.FindCachedPrefix(c).size(), 2u);
  // A different first block breaks the chain even if the second matches.
  Sequence d(4, {9, 2, 3, 4, 5, 6, 7, 8, 9}, 0);
  EXPECT_TRUE(blocks.FindCachedPrefix(d).empty());
}

TEST(BlockManagerTest, EvictsLeastRecentlyUsedCachedBlockFirst) {
  BlockManager blocks(2, 2);
  Sequence a(1, {1, 2, 3}, 0), b(2, {4, 5, 6}, 0);
  ASSERT_TRUE(blocks.Admit(a, {}, 2));
  a.set_num_computed(2);
  blocks.CommitFullBlocks(a);
  ASSERT_TRUE(blocks.Admit(b, {}, 2));
  b.set_num_computed(2);
  blocks.CommitFullBlocks(b);
  blocks.Free(a);  // cached first: evicted first
  blocks.Free(b);
  Sequence c(3, {7, 8}, 0);
  ASSERT_TRUE(blocks.Admit(c, {}, 2));
  EXPECT_TRUE(blocks.FindCachedPrefix(a).empty());
  EXPECT_EQ(blocks.FindCachedPrefix(b).size(), 1u);
}

// Fills the pool with a pinned or a normal sequence's computed full blocks,
// then frees it: they stay cached.
void CacheBlocks(BlockManager& blocks, uint64_t id, std::vector<int> tokens,
                 Retention retention) {
  Sequence seq(id, std::move(tokens), 0, retention);
  ASSERT_TRUE(
      blocks.Admit(seq, blocks.FindCachedPrefix(seq), seq.num_tokens()));
  seq.set_num_computed(seq.num_tokens());
  blocks.CommitFullBlocks(seq);
  blocks.Free(seq);
}

TEST(BlockManagerTest, PinnedBlocksWithinTheBudgetAreNeverEvicted) {
  BlockManager blocks(6, 2, true, /*max_pinned_blocks=*/2);
  CacheBlocks(blocks, 1, {1, 2, 3, 4}, Retention::kPinned);
  EXPECT_EQ(blocks.num_pinned(), 2);
  EXPECT_EQ(blocks.num_cached(), 2);
  // A load that wants every block gets only the four others.
  Sequence big(2, std::vector<int>(12, 9), 0);
  EXPECT_FALSE(blocks.Admit(big, {}, 12));
  Sequence fits(3, std::vector<int>(8, 9), 0);
  ASSERT_TRUE(blocks.Admit(fits, {}, 8));
  EXPECT_EQ(blocks.num_free(), 0);
  fits.set_num_computed(8);
  blocks.CommitFullBlocks(fits);
  blocks.Free(fits);
  // Normal traffic churns through the rest; the pinned prefix stays.
  for (int round = 0; round < 5; ++round) {
    CacheBlocks(blocks, 10 + round, std::vector<int>(8, 20 + round),
                Retention::kNormal);
  }
  Sequence again(20, {1, 2, 3, 4, 5}, 0);
  EXPECT_EQ(blocks.FindCachedPrefix(again).size(), 2u);
  EXPECT_TRUE(blocks.CheckInvariants({}).ok());
}

TEST(BlockManagerTest, PinnedBlocksBeyondTheBudgetGoAfterNormalOnes) {
  BlockManager blocks(4, 2, true, /*max_pinned_blocks=*/1);
  CacheBlocks(blocks, 1, {1, 2, 3, 4, 5}, Retention::kPinned);  // 2 pinned
  CacheBlocks(blocks, 2, {7, 8, 9}, Retention::kNormal);        // 1 normal
  EXPECT_EQ(blocks.num_pinned(), 2);
  // Three blocks: the free one, the normal one, then the oldest pinned one
  // (one pinned block over the budget); the last pinned block stays.
  Sequence load(3, std::vector<int>(6, 30), 0);
  ASSERT_TRUE(blocks.Admit(load, {}, 6));
  EXPECT_EQ(blocks.num_pinned(), 1);
  Sequence normal(4, {7, 8, 9}, 0);
  EXPECT_TRUE(blocks.FindCachedPrefix(normal).empty());
  Sequence extra(5, std::vector<int>(2, 40), 0);
  EXPECT_FALSE(blocks.Admit(extra, {}, 2));  // the last pinned is protected
  std::vector<const Sequence*> live = {&load};
  EXPECT_TRUE(blocks.CheckInvariants(live).ok());
  blocks.Free(load);
  EXPECT_TRUE(blocks.CheckInvariants({}).ok());
}

TEST(BlockManagerTest, ANormalRequestOnAPinnedPrefixLeavesItPinned) {
  BlockManager blocks(4, 2, true, /*max_pinned_blocks=*/2);
  CacheBlocks(blocks, 1, {1, 2, 3}, Retention::kPinned);
  CacheBlocks(blocks, 2, {1, 2, 5, 6, 7}, Retention::kNormal);
  EXPECT_EQ(blocks.num_pinned(), 1);  // {1, 2}; {5, 6} is not pinned
  EXPECT_EQ(blocks.num_cached(), 2);
  EXPECT_TRUE(blocks.CheckInvariants({}).ok());
}

// A config.json's max_position_embeddings reaches BlocksFor unchanged; near
// INT_MAX, `tokens + block_size - 1` used to wrap negative.
TEST(BlockManagerTest, BlocksForDoesNotOverflowNearIntMax) {
  constexpr int kMax = std::numeric_limits<int>::max();
  EXPECT_EQ(BlocksFor(0, 16), 0);
  EXPECT_EQ(BlocksFor(1, 16), 1);
  EXPECT_EQ(BlocksFor(16, 16), 1);
  EXPECT_EQ(BlocksFor(17, 16), 2);
  EXPECT_EQ(BlocksFor(2147483633, 16), 134217728);
  EXPECT_EQ(BlocksFor(kMax, 16), kMax / 16 + 1);
  EXPECT_EQ(BlocksFor(kMax, 1), kMax);
  EXPECT_EQ(BlocksFor(kMax, kMax), 1);
}

}  // namespace
}  // namespace hydra::scheduler
