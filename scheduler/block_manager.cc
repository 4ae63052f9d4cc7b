#include "scheduler/block_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hydra::scheduler {

BlockManager::BlockManager(int num_blocks, int block_size,
                           bool enable_prefix_cache, int max_pinned_blocks)
    : block_size_(block_size),
      prefix_cache_(enable_prefix_cache),
      blocks_(num_blocks),
      max_pinned_blocks_(max_pinned_blocks) {
  // Hand out low block ids first: the pop comes from the back.
  free_.reserve(num_blocks);
  for (int b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

uint64_t BlockManager::HashBlock(uint64_t parent, std::span<const int> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final avalanche
  // (splitmix64). Collisions are caught by comparing tokens on lookup.
  uint64_t h = 0xcbf29ce484222325ull ^ parent;
  auto mix_in = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix_in(parent);
  for (int t : tokens) mix_in(static_cast<uint32_t>(t));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::vector<int> BlockManager::FindCachedPrefix(const Sequence& seq) const {
  std::vector<int> found;
  if (!prefix_cache_) return found;
  const auto tokens = seq.tokens();
  const int max_blocks = (seq.num_tokens() - 1) / block_size_;
  uint64_t parent = 0;
  for (int i = 0; i < max_blocks; ++i) {
    const auto block_tokens =
        tokens.subspan(size_t(i) * block_size_, block_size_);
    const uint64_t h = HashBlock(parent, block_tokens);
    const auto it = cached_by_hash_.find(h);
    if (it == cached_by_hash_.end()) break;
    const Block& block = blocks_[it->second];
    if (!std::equal(block.tokens.begin(), block.tokens.end(),
                    block_tokens.begin(), block_tokens.end())) {
      break;  // a hash collision: a different prefix
    }
    found.push_back(it->second);
    parent = h;
  }
  return found;
}

std::vector<StoredBlock> BlockManager::FindStoredPrefix(
    const Sequence& seq, std::span<const int> prefix) const {
  std::vector<StoredBlock> found;
  if (!prefix_cache_ || !tiers_.any_enabled()) return found;
  const auto tokens = seq.tokens();
  const int max_blocks = (seq.num_tokens() - 1) / block_size_;
  uint64_t parent = prefix.empty() ? 0 : *blocks_[prefix.back()].hash;
  for (int i = static_cast<int>(prefix.size()); i < max_blocks; ++i) {
    const auto block_tokens =
        tokens.subspan(size_t(i) * block_size_, block_size_);
    const uint64_t h = HashBlock(parent, block_tokens);
    const std::optional<KvTier> tier = tiers_.Find(h, parent, block_tokens);
    if (!tier.has_value()) break;
    found.push_back({h, *tier});
    parent = h;
  }
  return found;
}

bool BlockManager::CanAllocate(const Sequence& seq, std::span<const int> prefix,
                               int tokens) const {
  const int have = static_cast<int>(seq.block_table().size() + prefix.size());
  const int needed = std::max(0, BlocksFor(tokens, block_size_) - have);
  // Prefix blocks nobody holds leave the cache when taken, and with it what
  // new blocks could have been evicted from.
  int cached = 0, cached_pinned = 0;
  for (int b : prefix) {
    if (blocks_[b].ref_count != 0) continue;
    ++(blocks_[b].pinned ? cached_pinned : cached);
  }
  return needed <= num_free() + static_cast<int>(lru_.size()) - cached +
                       EvictablePinned(cached_pinned);
}

bool BlockManager::Admit(Sequence& seq, std::span<const int> prefix,
                         int tokens) {
  if (!CanAllocate(seq, prefix, tokens)) return false;
  for (int b : prefix) {
    Acquire(b);
    PinFor(seq, b);
    seq.block_table().push_back(b);
    seq.block_hashes().push_back(*blocks_[b].hash);
  }
  const int hit_tokens = static_cast<int>(prefix.size()) * block_size_;
  seq.set_num_computed(hit_tokens);
  if (seq.preemptions() == 0) seq.set_num_cached_prompt(hit_tokens);
  if (prefix_cache_) {
    prefix_queries_ += seq.num_tokens();
    prefix_hits_ += hit_tokens;
  }
  return Grow(seq, tokens);
}

bool BlockManager::Admit(Sequence& seq, std::span<const int> prefix,
                         std::span<const StoredBlock> stored, int tokens,
                         std::vector<internal::KvLoad>& loads) {
  if (!Admit(seq, prefix, tokens)) return false;
  // Lookups go memory, then host, then disk: each lower tier is asked for
  // the tokens the tiers above did not have.
  int64_t asked =
      seq.num_tokens() - static_cast<int64_t>(prefix.size()) * block_size_;
  for (KvTier tier : kLowerTiers) {
    if (!tiers_.enabled(tier)) continue;
    tier_queries_[tier] += asked;
    for (const StoredBlock& s : stored) {
      if (s.tier == tier) {
        tier_hits_[tier] += block_size_;
        asked -= block_size_;
      }
    }
  }
  for (size_t i = 0; i < stored.size(); ++i) {
    tiers_.Touch(stored[i].tier, stored[i].hash);
    internal::KvLoad& load = loads.emplace_back();
    load.set_tier(stored[i].tier);
    load.set_block(seq.block_table()[prefix.size() + i]);
    load.set_hash(stored[i].hash);
  }
  return true;
}

void BlockManager::FinishLoads(Sequence& seq,
                               std::span<const internal::KvLoad> loads,
                               std::span<const int> failed) {
  int arrived = static_cast<int>(loads.size());
  for (int i : failed) {
    arrived = std::min(arrived, i);
    ++tier_load_failures_[loads[i].tier()];
    tiers_.Erase(loads[i].tier(), loads[i].hash());
  }
  seq.set_num_computed(seq.num_computed() + arrived * block_size_);
  if (seq.preemptions() == 0) {
    seq.set_num_cached_prompt(seq.num_cached_prompt() + arrived * block_size_);
  }
  CommitFullBlocks(seq);
}

void BlockManager::SaveToTiers(int b, uint64_t hash, uint64_t parent) {
  const Block& block = blocks_[b];
  for (KvTier tier : kLowerTiers) {
    if (!tiers_.enabled(tier)) continue;
    if (tiers_.Contains(tier, hash)) {
      tiers_.Touch(tier, hash);
      continue;
    }
    for (uint64_t evicted : tiers_.Insert(tier, hash, parent, block.tokens)) {
      internal::KvDrop& drop = pending_drops_.emplace_back();
      drop.set_tier(tier);
      drop.set_hash(evicted);
    }
    // Drops run after saves: one owed for this very hash would delete it.
    std::erase_if(pending_drops_, [&](const internal::KvDrop& d) {
      return d.tier() == tier && d.hash() == hash;
    });
    internal::KvSave& save = pending_saves_.emplace_back();
    save.set_tier(tier);
    save.set_block(b);
    save.set_hash(hash);
    save.set_parent_hash(parent);
    save.mutable_tokens()->Add(block.tokens.begin(), block.tokens.end());
  }
}

void BlockManager::RecordStored(KvTier tier, uint64_t hash, uint64_t parent,
                                std::span<const int> tokens) {
  if (!tiers_.enabled(tier) || tokens.size() != size_t(block_size_)) return;
  for (uint64_t evicted : tiers_.Insert(tier, hash, parent, tokens)) {
    internal::KvDrop& drop = pending_drops_.emplace_back();
    drop.set_tier(tier);
    drop.set_hash(evicted);
  }
}

void BlockManager::TakeTierTraffic(internal::StepPlan& plan) {
  for (internal::KvSave& save : pending_saves_) {
    *plan.add_kv_saves() = std::move(save);
  }
  for (internal::KvDrop& drop : pending_drops_) {
    *plan.add_kv_drops() = std::move(drop);
  }
  pending_saves_.clear();
  pending_drops_.clear();
}

bool BlockManager::Grow(Sequence& seq, int tokens) {
  const int needed = BlocksFor(tokens, block_size_) -
                     static_cast<int>(seq.block_table().size());
  if (needed > available()) return false;
  for (int i = 0; i < needed; ++i) {
    const int b = TakeBlock();
    Acquire(b);
    seq.block_table().push_back(b);
  }
  return true;
}

std::optional<BlockCopy> BlockManager::PrepareWrite(Sequence& seq, int position,
                                                    bool* ok) {
  *ok = true;
  int& slot = seq.block_table()[position / block_size_];
  if (blocks_[slot].ref_count == 1) return std::nullopt;
  if (available() == 0) {
    *ok = false;
    return std::nullopt;
  }
  const int copy = TakeBlock();
  Acquire(copy);
  const BlockCopy plan{slot, copy};
  Release(slot);
  slot = copy;
  return plan;
}

void BlockManager::CommitFullBlocks(Sequence& seq) {
  if (!prefix_cache_) return;
  const int full = seq.num_computed() / block_size_;
  auto& hashes = seq.block_hashes();
  for (int i = static_cast<int>(hashes.size()); i < full; ++i) {
    const auto block_tokens =
        seq.tokens().subspan(size_t(i) * block_size_, block_size_);
    const uint64_t h = HashBlock(i == 0 ? 0 : hashes[i - 1], block_tokens);
    hashes.push_back(h);
    Block& block = blocks_[seq.block_table()[i]];
    if (block.hash.has_value() || cached_by_hash_.contains(h)) {
      continue;  // already cached, here or in an identical block
    }
    PinFor(seq, seq.block_table()[i]);
    block.hash = h;
    block.tokens.assign(block_tokens.begin(), block_tokens.end());
    cached_by_hash_[h] = seq.block_table()[i];
    SaveToTiers(seq.block_table()[i], h, i == 0 ? 0 : hashes[i - 1]);
  }
}

void BlockManager::Truncate(Sequence& seq, int tokens) {
  auto& table = seq.block_table();
  const size_t keep = std::max<size_t>(BlocksFor(tokens, block_size_),
                                       seq.block_hashes().size());
  while (table.size() > keep) {
    Release(table.back());
    table.pop_back();
  }
}

void BlockManager::Fork(const Sequence& parent, Sequence& child) {
  child.block_table() = parent.block_table();
  child.block_hashes() = parent.block_hashes();
  child.set_num_computed(parent.num_computed());
  for (int b : child.block_table()) Acquire(b);
}

void BlockManager::Free(Sequence& seq) {
  // The tail first: it ends up evicted before the head, which more
  // sequences are likely to share.
  auto& table = seq.block_table();
  for (auto it = table.rbegin(); it != table.rend(); ++it) Release(*it);
  table.clear();
  seq.block_hashes().clear();
  seq.set_num_computed(0);
}

int BlockManager::EvictablePinned(int cached_pinned_taken) const {
  const int cached = static_cast<int>(pinned_lru_.size()) - cached_pinned_taken;
  return std::max(0, std::min(cached, num_pinned_ - max_pinned_blocks_));
}

void BlockManager::PinFor(const Sequence& seq, int b) {
  Block& block = blocks_[b];
  if (seq.retention() != Retention::kPinned || block.pinned) return;
  block.pinned = true;
  ++num_pinned_;
}

int BlockManager::TakeBlock() {
  if (!free_.empty()) {
    const int b = free_.back();
    free_.pop_back();
    return b;
  }
  std::list<int>& from = lru_.empty() ? pinned_lru_ : lru_;
  const int b = from.front();
  from.pop_front();
  Block& block = blocks_[b];
  cached_by_hash_.erase(*block.hash);
  block.hash.reset();
  block.tokens.clear();
  if (block.pinned) {
    block.pinned = false;
    --num_pinned_;
  }
  return b;
}

void BlockManager::Acquire(int b) {
  Block& block = blocks_[b];
  if (block.ref_count == 0) {
    if (block.hash.has_value()) {  // a cache hit
      (block.pinned ? pinned_lru_ : lru_).erase(block.lru_pos);
    }
    ++num_used_;
  }
  ++block.ref_count;
}

void BlockManager::Release(int b) {
  Block& block = blocks_[b];
  if (--block.ref_count > 0) return;
  --num_used_;
  if (block.hash.has_value()) {
    std::list<int>& lru = block.pinned ? pinned_lru_ : lru_;
    block.lru_pos = lru.insert(lru.end(), b);
  } else {
    // Pinned only while cached: a block that never held a full prefix
    // (the sequence ended mid-block) is free again.
    if (block.pinned) {
      block.pinned = false;
      --num_pinned_;
    }
    free_.push_back(b);
  }
}

absl::Status BlockManager::CheckInvariants(
    std::span<const Sequence* const> live) const {
  const int n = num_blocks();
  std::vector<int> holders(n, 0);
  for (const Sequence* seq : live) {
    for (int b : seq->block_table()) {
      if (b < 0 || b >= n)
        return absl::InternalError(
            absl::StrCat("block id ", b, " out of range"));
      ++holders[b];
    }
    // Unverified draft tokens must never become findable prefixes.
    if (seq->block_hashes().size() >
        static_cast<size_t>(seq->num_computed() / block_size_)) {
      return absl::InternalError(absl::StrCat(
          "sequence ", seq->id(), " registered ", seq->block_hashes().size(),
          " blocks but has only ", seq->num_computed(), " computed tokens"));
    }
    // A sequence's registered blocks hold exactly its tokens.
    for (size_t i = 0; i < seq->block_hashes().size(); ++i) {
      const Block& block = blocks_[seq->block_table()[i]];
      if (!block.hash.has_value()) continue;
      const auto expect = seq->tokens().subspan(i * block_size_, block_size_);
      if (!std::equal(block.tokens.begin(), block.tokens.end(), expect.begin(),
                      expect.end())) {
        return absl::InternalError(absl::StrCat("block ", seq->block_table()[i],
                                                " of sequence ", seq->id(),
                                                " holds other tokens"));
      }
    }
  }
  std::vector<int> where(n, 0);  // 1 = free list, 2 = LRU, 3 = pinned LRU
  for (int b : free_) {
    if (where[b] != 0)
      return absl::InternalError(
          absl::StrCat("block ", b, " twice in free list"));
    where[b] = 1;
  }
  for (int b : lru_) {
    if (where[b] != 0)
      return absl::InternalError(
          absl::StrCat("block ", b, " both free and cached"));
    where[b] = 2;
  }
  for (int b : pinned_lru_) {
    if (where[b] != 0 || !blocks_[b].pinned)
      return absl::InternalError(
          absl::StrCat("block ", b,
                       " in the pinned LRU but free, cached or "
                       "not pinned"));
    where[b] = 3;
  }
  int pinned = 0;
  int used = 0;
  for (int b = 0; b < n; ++b) {
    const Block& block = blocks_[b];
    if (block.ref_count != holders[b]) {
      return absl::InternalError(absl::StrCat("block ", b, " has ref_count ",
                                              block.ref_count, " but ",
                                              holders[b], " holders"));
    }
    if (block.ref_count > 0) {
      ++used;
      if (where[b] != 0)
        return absl::InternalError(
            absl::StrCat("held block ", b, " is not used"));
    } else if (where[b] == 0) {
      return absl::InternalError(absl::StrCat("unheld block ", b, " is lost"));
    } else if ((where[b] >= 2) != block.hash.has_value() ||
               (where[b] == 2 && block.pinned)) {
      return absl::InternalError(
          absl::StrCat("block ", b, " cache state disagrees with its hash"));
    }
    pinned += block.pinned;
    if (block.hash.has_value()) {
      const auto it = cached_by_hash_.find(*block.hash);
      if (it == cached_by_hash_.end() || it->second != b) {
        return absl::InternalError(
            absl::StrCat("cached block ", b, " not findable by hash"));
      }
    }
  }
  if (pinned != num_pinned_) {
    return absl::InternalError(absl::StrCat(
        num_pinned_, " blocks counted pinned, ", pinned, " marked"));
  }
  if (used != num_used_ || used + num_free() + num_cached() != n ||
      cached_by_hash_.size() > size_t(n)) {
    return absl::InternalError(
        absl::StrCat("counts: used ", num_used_, " (actual ", used, ") + free ",
                     num_free(), " + cached ", num_cached(), " != ", n));
  }
  return absl::OkStatus();
}

}  // namespace hydra::scheduler
