// This rank's K and V storage: per layer, [num_blocks, block_size, kv_heads,
// head_dim] values of the cache's type for K and the same for V (plus, for
// int8, one scale per token and head). Which block belongs to which sequence
// is decided elsewhere (the scheduler's BlockManager); the worker only reads
// and writes slots named by the StepPlan.
//
// The pool is reserved, not touched: its pages are mapped on first write,
// so resident memory grows with the blocks in use, not with the budget.
#ifndef HYDRA_WORKER_KV_CACHE_H_
#define HYDRA_WORKER_KV_CACHE_H_

#include <cstddef>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::worker {

struct KvCacheShape {
  int num_layers = 0;
  int kv_heads = 0;  // on this rank
  int head_dim = 0;
  int block_size = 16;
  cpu::KvType type = cpu::KvType::kF32;

  // K and V of one block across all layers.
  size_t bytes_per_block() const {
    return size_t(2) * num_layers * block_size * kv_heads *
           cpu::KvBytesPerHead(type, head_dim);
  }
  // How many blocks fit a memory budget; an error when not even one does.
  absl::StatusOr<int> BlocksForBudget(size_t budget_bytes) const;
};

// Anonymous memory mapped without being touched: reads as zeros, costs
// resident memory only where written. Move-only.
class ReservedMemory {
 public:
  ReservedMemory() = default;
  explicit ReservedMemory(size_t bytes);
  ~ReservedMemory();
  ReservedMemory(ReservedMemory&& other) noexcept;
  ReservedMemory& operator=(ReservedMemory&& other) noexcept;
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

class KvCache {
 public:
  // Throws std::bad_alloc when the address space cannot be reserved.
  KvCache(const KvCacheShape& shape, int num_blocks);

  const KvCacheShape& shape() const { return shape_; }
  int num_blocks() const { return num_blocks_; }
  size_t bytes() const { return shape_.bytes_per_block() * num_blocks_; }
  cpu::PagedKvLayer layer(int i) const;
  // Copies block `src` to block `dst` on every layer (copy-on-write).
  void CopyBlock(int src, int dst);
  // Block `block`'s K and V on every layer (and int8 scales), as
  // shape().bytes_per_block() bytes: what a lower KV tier stores.
  void ReadBlock(int block, std::span<std::byte> out) const;
  void WriteBlock(int block, std::span<const std::byte> in);

 private:
  // Byte offsets inside memory_ of layer l's K values, V values, K scales
  // and V scales.
  // Calls f(pointer, bytes) on each of `block`'s regions, in a fixed order.
  template <typename F>
  void ForEachRegion(int block, F f) const;
  size_t values_bytes() const;  // one layer's K (or V) values
  size_t scales_bytes() const;  // one layer's K (or V) scales
  std::byte* k(int l) const;
  std::byte* v(int l) const;
  float* k_scale(int l) const;
  float* v_scale(int l) const;

  KvCacheShape shape_;
  int num_blocks_;
  ReservedMemory memory_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_KV_CACHE_H_
