// The logical side of the KV tiers below the pool (host memory, disk):
// which full prefix blocks each tier holds, keyed by the prefix cache's hash
// chain, within each tier's capacity, least recently used evicted first.
// The BlockManager owns it and tells the workers, through the StepPlan, what
// to save, load and drop; the bytes live on every rank
// (worker/kv_tier_store.h), one shard each, under the same keys.
//
// The tiers are inclusive: a block is written to every enabled tier when it
// is committed, and a lookup prefers host memory over disk.
#ifndef HYDRA_SCHEDULER_KV_TIER_INDEX_H_
#define HYDRA_SCHEDULER_KV_TIER_INDEX_H_

#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "hydra/internal/step.pb.h"

namespace hydra::scheduler {

using internal::KvTier;

// The lower tiers, in lookup order.
inline constexpr std::array<KvTier, 2> kLowerTiers = {internal::KV_TIER_HOST,
                                                      internal::KV_TIER_DISK};

class KvTierIndex {
 public:
  // Capacities in blocks; 0 disables a tier.
  KvTierIndex(int host_blocks = 0, int disk_blocks = 0);

  bool enabled(KvTier tier) const { return capacity(tier) > 0; }
  bool any_enabled() const {
    return enabled(internal::KV_TIER_HOST) || enabled(internal::KV_TIER_DISK);
  }
  int capacity(KvTier tier) const { return tier_(tier).capacity; }
  int size(KvTier tier) const {
    return static_cast<int>(tier_(tier).entries.size());
  }
  bool Contains(KvTier tier, uint64_t hash) const {
    return tier_(tier).entries.contains(hash);
  }

  // The first tier (host, then disk) that holds `hash` as the block of
  // `tokens` after the block hashed `parent`; nullopt when none does.
  std::optional<KvTier> Find(uint64_t hash, uint64_t parent,
                             std::span<const int> tokens) const;
  // Marks `hash` most recently used in `tier`.
  void Touch(KvTier tier, uint64_t hash);
  // Records a block stored in `tier` (most recently used) and returns the
  // hashes evicted to make room, least recently used first.
  std::vector<uint64_t> Insert(KvTier tier, uint64_t hash, uint64_t parent,
                               std::span<const int> tokens);
  // Forgets a block (its load failed: missing or corrupt on some rank).
  void Erase(KvTier tier, uint64_t hash);

 private:
  struct Entry {
    uint64_t parent;
    std::vector<int> tokens;
    std::list<uint64_t>::iterator lru_pos;
  };
  struct Tier {
    int capacity = 0;
    std::list<uint64_t> lru;  // front = evicted first
    std::unordered_map<uint64_t, Entry> entries;
  };
  Tier& tier_(KvTier tier) {
    return tier == internal::KV_TIER_HOST ? host_ : disk_;
  }
  const Tier& tier_(KvTier tier) const {
    return tier == internal::KV_TIER_HOST ? host_ : disk_;
  }

  Tier host_;
  Tier disk_;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_KV_TIER_INDEX_H_
