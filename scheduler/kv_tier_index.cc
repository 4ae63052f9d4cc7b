#include "scheduler/kv_tier_index.h"

#include <algorithm>

namespace hydra::scheduler {

KvTierIndex::KvTierIndex(int host_blocks, int disk_blocks) {
  host_.capacity = std::max(0, host_blocks);
  disk_.capacity = std::max(0, disk_blocks);
}

std::optional<KvTier> KvTierIndex::Find(uint64_t hash, uint64_t parent,
                                        std::span<const int> tokens) const {
  for (KvTier tier : kLowerTiers) {
    const auto& entries = tier_(tier).entries;
    const auto it = entries.find(hash);
    if (it == entries.end() || it->second.parent != parent) continue;
    if (std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(),
                   it->second.tokens.end())) {
      return tier;
    }
  }
  return std::nullopt;
}

void KvTierIndex::Touch(KvTier tier, uint64_t hash) {
  Tier& t = tier_(tier);
  const auto it = t.entries.find(hash);
  if (it == t.entries.end()) return;
  t.lru.splice(t.lru.end(), t.lru, it->second.lru_pos);
}

std::vector<uint64_t> KvTierIndex::Insert(KvTier tier, uint64_t hash,
                                          uint64_t parent,
                                          std::span<const int> tokens) {
  std::vector<uint64_t> evicted;
  Tier& t = tier_(tier);
  if (t.capacity == 0) return evicted;
  if (t.entries.contains(hash)) {
    Touch(tier, hash);
    return evicted;
  }
  while (static_cast<int>(t.entries.size()) >= t.capacity) {
    const uint64_t victim = t.lru.front();
    t.lru.pop_front();
    t.entries.erase(victim);
    evicted.push_back(victim);
  }
  Entry& e = t.entries[hash];
  e.parent = parent;
  e.tokens.assign(tokens.begin(), tokens.end());
  e.lru_pos = t.lru.insert(t.lru.end(), hash);
  return evicted;
}

void KvTierIndex::Erase(KvTier tier, uint64_t hash) {
  Tier& t = tier_(tier);
  const auto it = t.entries.find(hash);
  if (it == t.entries.end()) return;
  t.lru.erase(it->second.lru_pos);
  t.entries.erase(it);
}

}  // namespace hydra::scheduler
