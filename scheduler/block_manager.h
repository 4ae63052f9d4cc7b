// The logical side of the paged KV cache: which physical block holds which
// part of which sequence. A fixed pool of blocks, reference counted so that
// sequences can share them, with a prefix cache over full blocks.
//
// A block is in exactly one state:
//   used    referenced by at least one sequence;
//   cached  unreferenced but holding a full block of known tokens, findable by
//           its hash chain, evicted least recently used first when needed;
//   free    unreferenced and empty.
// A cached block is also pinned once a Retention::kPinned sequence has held
// it: pinned blocks are evicted only after every other cached block, and
// only while more blocks are pinned than the pinned budget.
//
// Below the pool, optional lower tiers (KvTierIndex: host memory, disk)
// keep committed blocks after the pool has evicted them, and across
// restarts: a block is saved to them when it is committed, and a prefix
// found there is loaded into fresh pool blocks instead of recomputed. The
// workers move the bytes; this class only plans the traffic.
#ifndef HYDRA_SCHEDULER_BLOCK_MANAGER_H_
#define HYDRA_SCHEDULER_BLOCK_MANAGER_H_

#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "hydra/internal/step.pb.h"
#include "scheduler/kv_tier_index.h"
#include "scheduler/sequence.h"

namespace hydra::scheduler {

struct BlockCopy {
  int src;
  int dst;
};

// Blocks of `block_size` (> 0) tokens needed to hold `tokens` (>= 0) tokens.
// Written without `tokens + block_size - 1`, which overflows int for token
// counts near INT_MAX (a config.json's max_position_embeddings, say).
inline int BlocksFor(int tokens, int block_size) {
  return tokens / block_size + (tokens % block_size != 0 ? 1 : 0);
}

// A block of a prompt's prefix that a lower tier holds.
struct StoredBlock {
  uint64_t hash;
  KvTier tier;
};

class BlockManager {
 public:
  // `max_pinned_blocks`: the pinned budget, the pinned blocks that are never
  // evicted.
  BlockManager(int num_blocks, int block_size, bool enable_prefix_cache = true,
               int max_pinned_blocks = 0);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  int block_size() const { return block_size_; }
  int num_used() const { return num_used_; }
  int num_cached() const {
    return static_cast<int>(lru_.size() + pinned_lru_.size());
  }
  // Pinned blocks, held or cached.
  int num_pinned() const { return num_pinned_; }
  int max_pinned_blocks() const { return max_pinned_blocks_; }
  int num_free() const { return static_cast<int>(free_.size()); }
  // Blocks an allocation could take now (free, cached, evictable pinned).
  int num_available() const { return available(); }

  // Prefix-cache lookups, in tokens: queried at each admission and found.
  int64_t prefix_queries() const { return prefix_queries_; }
  int64_t prefix_hits() const { return prefix_hits_; }

  // The cached blocks that hold a prefix of `seq`'s tokens, longest first
  // match; never the whole sequence, so at least one token is left to
  // compute (its logits are needed). Changes nothing.
  std::vector<int> FindCachedPrefix(const Sequence& seq) const;

  // The blocks after `prefix` (from FindCachedPrefix) that continue it in
  // a lower tier, in order; never the whole sequence. Changes nothing.
  std::vector<StoredBlock> FindStoredPrefix(const Sequence& seq,
                                            std::span<const int> prefix) const;

  // Whether `seq` can take `prefix` (from FindCachedPrefix) and grow its
  // block table to hold `tokens` tokens.
  bool CanAllocate(const Sequence& seq, std::span<const int> prefix,
                   int tokens) const;
  // Admits a new or preempted sequence: attaches the prefix blocks (marking
  // those tokens computed), then allocates up to `tokens` tokens. Counts the
  // prefix-cache query. Returns false, changing nothing, when blocks run out.
  bool Admit(Sequence& seq, std::span<const int> prefix, int tokens);
  // The same, with `stored` (from FindStoredPrefix) loaded into the blocks
  // after the prefix: one KvLoad each is appended to `loads`. Their tokens
  // count as computed only once FinishLoads says they arrived; `tokens`
  // must cover them.
  bool Admit(Sequence& seq, std::span<const int> prefix,
             std::span<const StoredBlock> stored, int tokens,
             std::vector<internal::KvLoad>& loads);
  // After the step that ran `loads` (from Admit) for `seq`: those at
  // `failed` (indices into `loads`) did not arrive on every rank. The run
  // before the first failure becomes computed and cached; a failed block is
  // forgotten by its tier (it will be recomputed, and saved again).
  void FinishLoads(Sequence& seq, std::span<const internal::KvLoad> loads,
                   std::span<const int> failed);
  // Moves the saves and drops owed to the lower tiers into `plan`.
  void TakeTierTraffic(internal::StepPlan& plan);
  bool has_tier_traffic() const {
    return !pending_saves_.empty() || !pending_drops_.empty();
  }
  // Sets the lower tiers' capacities (blocks; 0 disables a tier).
  void EnableTiers(int host_blocks, int disk_blocks) {
    tiers_ = KvTierIndex(host_blocks, disk_blocks);
  }
  // Records a block a tier already holds (what an earlier run left on
  // disk), most recently used; past the capacity the oldest are dropped.
  void RecordStored(KvTier tier, uint64_t hash, uint64_t parent,
                    std::span<const int> tokens);
  const KvTierIndex& tiers() const { return tiers_; }
  // Prompt tokens looked up in, and served from, each lower tier at
  // admission (tokens before the first block no tier holds); loads that
  // failed, in blocks.
  int64_t tier_queries(KvTier tier) const { return tier_queries_[tier]; }
  int64_t tier_hits(KvTier tier) const { return tier_hits_[tier]; }
  int64_t tier_load_failures(KvTier tier) const {
    return tier_load_failures_[tier];
  }
  // Grows an admitted sequence's table to hold `tokens` tokens.
  bool Grow(Sequence& seq, int tokens);

  // Copy-on-write: makes the block that holds `position` private to `seq`
  // before it is written. Returns the copy the worker must make, if any;
  // nullopt with `*ok` false when no block is available.
  std::optional<BlockCopy> PrepareWrite(Sequence& seq, int position, bool* ok);

  // Registers `seq`'s newly full, computed blocks in the prefix cache.
  void CommitFullBlocks(Sequence& seq);

  // Releases the blocks of `seq` past those that hold its first `tokens`
  // tokens: the rollback of blocks taken for draft tokens that were
  // rejected. Blocks registered in the prefix cache are always kept.
  void Truncate(Sequence& seq, int tokens);

  // `child` shares every block of `parent` (parallel sampling, beam search).
  void Fork(const Sequence& parent, Sequence& child);

  // Releases `seq`'s blocks; full blocks stay cached for later prefixes.
  void Free(Sequence& seq);

  // Checks the pool's invariants against every live sequence: reference
  // counts equal holders, no block both free and held, used + free + cached
  // = total, cached blocks findable by their hash, no sequence registered a
  // block holding a token that is not computed (a draft). For tests.
  absl::Status CheckInvariants(std::span<const Sequence* const> live) const;

 private:
  struct Block {
    int ref_count = 0;
    std::optional<uint64_t> hash;  // set while the block is in the prefix cache
    std::vector<int> tokens;  // the block's tokens, to reject hash collisions
    bool pinned = false;
    std::list<int>::iterator lru_pos;  // valid while cached and unreferenced
  };

  static uint64_t HashBlock(uint64_t parent, std::span<const int> tokens);
  // Owes every enabled lower tier that lacks it a save of block `b`.
  void SaveToTiers(int b, uint64_t hash, uint64_t parent);
  // Blocks a new allocation may take: free, cached, and the pinned cached
  // ones beyond the budget.
  int available() const {
    return num_free() + static_cast<int>(lru_.size()) + EvictablePinned(0);
  }
  int EvictablePinned(int cached_pinned_taken) const;
  // Marks `b` pinned if `seq` pins what it holds.
  void PinFor(const Sequence& seq, int b);
  // Takes a free block, else evicts the least recently used cached one.
  int TakeBlock();
  void Acquire(int block);
  void Release(int block);

  int block_size_;
  bool prefix_cache_;
  std::vector<Block> blocks_;
  std::vector<int> free_;
  std::list<int> lru_;         // cached, unreferenced; front = evicted first
  std::list<int> pinned_lru_;  // the same, for pinned blocks
  int max_pinned_blocks_;
  int num_pinned_ = 0;
  std::unordered_map<uint64_t, int> cached_by_hash_;
  int num_used_ = 0;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
  KvTierIndex tiers_;
  std::vector<internal::KvSave> pending_saves_;
  std::vector<internal::KvDrop> pending_drops_;
  // Indexed by KvTier.
  std::array<int64_t, 3> tier_queries_{};
  std::array<int64_t, 3> tier_hits_{};
  std::array<int64_t, 3> tier_load_failures_{};
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_BLOCK_MANAGER_H_
