// The KV tiers below the pool, planned by the BlockManager: a property test
// that runs thousands of random admissions, decodes and frees over a small
// pool with small host and disk tiers, carrying out every planned save,
// load and drop on a shadow worker (and corrupting some stored blocks), and
// checks after each step that no block is lost, that every computed
// position holds its token (no stale block is ever served), and that each
// tier's index and its store agree.
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/block_manager.h"
#include "scheduler/kv_tier_index.h"

namespace hydra::scheduler {
namespace {

constexpr int kBlockSize = 4;
constexpr int kPoolBlocks = 16;

TEST(KvTierIndexTest, EvictsLeastRecentlyUsedAndMatchesTokensAndParent) {
  KvTierIndex index(/*host_blocks=*/2, /*disk_blocks=*/0);
  const std::vector<int> a = {1, 2}, b = {3, 4}, c = {5, 6};
  EXPECT_TRUE(index.Insert(internal::KV_TIER_HOST, 10, 0, a).empty());
  EXPECT_TRUE(index.Insert(internal::KV_TIER_HOST, 11, 10, b).empty());
  index.Touch(internal::KV_TIER_HOST, 10);  // 11 is now the oldest
  EXPECT_EQ(index.Insert(internal::KV_TIER_HOST, 12, 11, c),
            std::vector<uint64_t>{11});
  EXPECT_EQ(index.Find(10, 0, a), internal::KV_TIER_HOST);
  EXPECT_EQ(index.Find(10, 0, b), std::nullopt);   // other tokens
  EXPECT_EQ(index.Find(10, 99, a), std::nullopt);  // other parent
  EXPECT_EQ(index.Find(11, 10, b), std::nullopt);  // evicted
  EXPECT_FALSE(index.enabled(internal::KV_TIER_DISK));
  EXPECT_TRUE(index.Insert(internal::KV_TIER_DISK, 13, 0, a).empty());
  EXPECT_FALSE(index.Contains(internal::KV_TIER_DISK, 13));
}

class KvTiersPropertyTest : public ::testing::TestWithParam<int> {
 protected:
  KvTiersPropertyTest()
      : blocks_(kPoolBlocks, kBlockSize), shadow_(kPoolBlocks * kBlockSize) {
    blocks_.EnableTiers(/*host_blocks=*/12, /*disk_blocks=*/40);
  }

  using Slots = std::vector<int>;  // a block's tokens, as the worker holds them

  // What a worker does with a plan's tier traffic: saves, drops, loads. A
  // corrupt stored block fails its load, as a bad checksum would.
  std::vector<int> Apply(const internal::StepPlan& plan) {
    for (const auto& save : plan.kv_saves()) {
      Slots slots(shadow_.begin() + save.block() * kBlockSize,
                  shadow_.begin() + (save.block() + 1) * kBlockSize);
      // A save always copies a full block of the tokens it is keyed by.
      EXPECT_EQ(slots, Slots(save.tokens().begin(), save.tokens().end()));
      store_[save.tier()][save.hash()] = slots;
      corrupt_[save.tier()].erase(save.hash());
      ++saves_;
    }
    for (const auto& drop : plan.kv_drops()) {
      store_[drop.tier()].erase(drop.hash());
    }
    std::vector<int> failed;
    for (int i = 0; i < plan.kv_loads_size(); ++i) {
      const auto& load = plan.kv_loads(i);
      auto& store = store_[load.tier()];
      const auto it = store.find(load.hash());
      if (it == store.end() || corrupt_[load.tier()].contains(load.hash())) {
        failed.push_back(i);
        if (it != store.end()) store.erase(it);  // the worker removes it
        continue;
      }
      std::copy(it->second.begin(), it->second.end(),
                shadow_.begin() + load.block() * kBlockSize);
      ++loads_;
    }
    return failed;
  }

  void Compute(Sequence& seq, int upto) {
    for (int p = seq.num_computed(); p < upto; ++p) {
      const int b = seq.block_table()[p / kBlockSize];
      shadow_[b * kBlockSize + p % kBlockSize] = seq.tokens()[p];
    }
    seq.set_num_computed(upto);
    blocks_.CommitFullBlocks(seq);
  }

  void CheckState(int op) {
    std::vector<const Sequence*> holders;
    for (const auto& [id, seq] : live_) {
      holders.push_back(seq.get());
      for (int p = 0; p < seq->num_computed(); ++p) {
        const int b = seq->block_table()[p / kBlockSize];
        ASSERT_EQ(shadow_[b * kBlockSize + p % kBlockSize], seq->tokens()[p])
            << "op " << op << ": sequence " << id << " position " << p;
      }
    }
    const absl::Status status = blocks_.CheckInvariants(holders);
    ASSERT_TRUE(status.ok()) << "op " << op << ": " << status;
    // Once the traffic is carried out, the index and the stores agree.
    for (KvTier tier : kLowerTiers) {
      ASSERT_EQ(blocks_.tiers().size(tier),
                static_cast<int>(store_[tier].size()))
          << "op " << op << " tier " << tier;
      for (const auto& [hash, slots] : store_[tier]) {
        ASSERT_TRUE(blocks_.tiers().Contains(tier, hash))
            << "op " << op << " tier " << tier << " hash " << hash
            << " corrupt " << corrupt_[tier].contains(hash);
      }
      ASSERT_LE(blocks_.tiers().size(tier), blocks_.tiers().capacity(tier));
    }
  }

  std::vector<int> RandomPrompt(std::mt19937& rng) {
    // Ten shared stems (documents), more than the pool keeps at once, so
    // prefixes come back from the lower tiers.
    static const std::vector<std::vector<int>> stems = [] {
      std::mt19937 gen(7);
      std::vector<std::vector<int>> out(10);
      for (auto& stem : out) {
        stem.resize(8 + gen() % 9);
        for (int& t : stem) t = 10 + gen() % 90;
      }
      return out;
    }();
    std::vector<int> prompt = stems[rng() % stems.size()];
    const int tail = 1 + rng() % 6;
    for (int i = 0; i < tail; ++i) prompt.push_back(1 + rng() % 3);
    return prompt;
  }

  BlockManager blocks_;
  Slots shadow_;
  std::map<uint64_t, std::unique_ptr<Sequence>> live_;
  std::map<int, std::map<uint64_t, Slots>> store_;
  std::map<int, std::set<uint64_t>> corrupt_;
  int saves_ = 0, loads_ = 0;
};

TEST_P(KvTiersPropertyTest, NoBlockLostNoStaleBlockServed) {
  std::mt19937 rng(GetParam());
  uint64_t next_id = 1;
  int failed_loads = 0;
  for (int op = 0; op < 3000; ++op) {
    // One step, as the scheduler plans it: the traffic owed by the last
    // step's commits, then an admission's loads, carried out together.
    internal::StepPlan plan;
    blocks_.TakeTierTraffic(plan);
    Sequence* admitted = nullptr;
    std::vector<internal::KvLoad> loads;
    const int kind = rng() % 10;
    if (kind < 4 || live_.empty()) {
      auto seq = std::make_unique<Sequence>(next_id++, RandomPrompt(rng), 0);
      const std::vector<int> prefix = blocks_.FindCachedPrefix(*seq);
      const std::vector<StoredBlock> stored =
          blocks_.FindStoredPrefix(*seq, prefix);
      if (blocks_.Admit(*seq, prefix, stored, seq->num_tokens(), loads)) {
        for (const auto& load : loads) *plan.add_kv_loads() = load;
        admitted = seq.get();
        live_[seq->id()] = std::move(seq);
      }
    }
    const std::vector<int> failed = Apply(plan);
    failed_loads += static_cast<int>(failed.size());
    if (admitted != nullptr) {
      blocks_.FinishLoads(*admitted, loads, failed);
      // A block that came from disk is saved to the host tier too (owed to
      // the next step; carried out here so the check below can compare).
      internal::StepPlan promotions;
      blocks_.TakeTierTraffic(promotions);
      EXPECT_EQ(promotions.kv_loads_size(), 0);
      Apply(promotions);
    }
    // Every planned transfer is done: the index and the stores agree.
    ASSERT_NO_FATAL_FAILURE(CheckState(op));

    // Then the step computes, committing blocks (saves owed to the next).
    if (admitted != nullptr) {
      Compute(*admitted, admitted->num_tokens());
    } else if (kind == 4) {
      // Some stored block goes bad (bit rot, a truncated file).
      const KvTier tier = kLowerTiers[rng() % 2];
      if (!store_[tier].empty()) {
        auto it = store_[tier].begin();
        std::advance(it, rng() % store_[tier].size());
        corrupt_[tier].insert(it->first);
      }
    } else if (!live_.empty()) {
      auto it = live_.begin();
      std::advance(it, rng() % live_.size());
      Sequence& seq = *it->second;
      if (kind < 8) {
        seq.AppendToken(1 + rng() % 3);
        if (blocks_.Grow(seq, seq.num_tokens())) {
          Compute(seq, seq.num_tokens());
        } else {
          blocks_.Free(seq);  // out of blocks: preempted
          live_.erase(it);
        }
      } else {
        blocks_.Free(seq);
        live_.erase(it);
      }
    }
  }
  for (auto& [id, seq] : live_) blocks_.Free(*seq);
  live_.clear();
  internal::StepPlan last;
  blocks_.TakeTierTraffic(last);
  Apply(last);
  ASSERT_NO_FATAL_FAILURE(CheckState(-1));
  EXPECT_EQ(blocks_.num_used(), 0);
  // The walk exercised what it claims to.
  EXPECT_GT(saves_, 100);
  EXPECT_GT(loads_, 50);
  EXPECT_GT(failed_loads, 0);
  for (KvTier tier : kLowerTiers) {
    EXPECT_GT(blocks_.tier_hits(tier), 0) << tier;
    EXPECT_LE(blocks_.tier_hits(tier), blocks_.tier_queries(tier));
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, KvTiersPropertyTest,
                         ::testing::Values(1, 2, 3));

TEST(KvTiersTest, AFailedLoadIsRecomputedAndSavedAgain) {
  BlockManager blocks(8, kBlockSize);
  blocks.EnableTiers(0, 8);
  std::vector<int> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  // Hashes are the BlockManager's own: learn the real ones from a commit.
  Sequence first(1, prompt, 0);
  ASSERT_TRUE(blocks.Admit(first, {}, 9));
  first.set_num_computed(9);
  blocks.CommitFullBlocks(first);
  internal::StepPlan plan;
  blocks.TakeTierTraffic(plan);
  ASSERT_EQ(plan.kv_saves_size(), 2);  // two full blocks
  blocks.Free(first);
  // Evict them from the pool so only the disk tier has them.
  Sequence filler(2, std::vector<int>(32, 77), 0);
  ASSERT_TRUE(blocks.Admit(filler, {}, 32));
  blocks.Free(filler);
  internal::StepPlan ignored;
  blocks.TakeTierTraffic(ignored);

  Sequence again(3, prompt, 0);
  const auto prefix = blocks.FindCachedPrefix(again);
  const auto stored = blocks.FindStoredPrefix(again, prefix);
  ASSERT_EQ(stored.size(), 2u);
  std::vector<internal::KvLoad> loads;
  ASSERT_TRUE(blocks.Admit(again, prefix, stored, 9, loads));
  ASSERT_EQ(loads.size(), 2u);
  const std::vector<int> second_failed = {1};
  blocks.FinishLoads(again, loads, second_failed);
  EXPECT_EQ(again.num_computed(), kBlockSize);  // only the first arrived
  EXPECT_EQ(again.num_cached_prompt(), kBlockSize);
  EXPECT_EQ(blocks.tier_load_failures(internal::KV_TIER_DISK), 1);
  EXPECT_FALSE(
      blocks.tiers().Contains(internal::KV_TIER_DISK, loads[1].hash()));
  // Recomputed, the block is saved again.
  again.set_num_computed(9);
  blocks.CommitFullBlocks(again);
  internal::StepPlan resave;
  blocks.TakeTierTraffic(resave);
  ASSERT_EQ(resave.kv_saves_size(), 1);
  EXPECT_EQ(resave.kv_saves(0).hash(), loads[1].hash());
}

}  // namespace
}  // namespace hydra::scheduler
