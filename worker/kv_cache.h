// This rank's K and V storage: per layer, [num_blocks, block_size, kv_heads,
// head_dim] floats for K and the same for V. Which block belongs to which
// sequence is decided elsewhere (the scheduler's BlockManager); the worker only
// reads and writes slots named by the StepPlan.
#ifndef HYDRA_WORKER_KV_CACHE_H_
#define HYDRA_WORKER_KV_CACHE_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cpu/aligned_buffer.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::worker {

struct KvCacheShape {
  int num_layers = 0;
  int kv_heads = 0;  // on this rank
  int head_dim = 0;
  int block_size = 16;

  // K and V of one block across all layers.
  size_t bytes_per_block() const {
    return size_t(2) * num_layers * block_size * kv_heads * head_dim *
           sizeof(float);
  }
  // How many blocks fit a memory budget; an error when not even one does.
  absl::StatusOr<int> BlocksForBudget(size_t budget_bytes) const;
};

class KvCache {
 public:
  KvCache(const KvCacheShape& shape, int num_blocks);

  const KvCacheShape& shape() const { return shape_; }
  int num_blocks() const { return num_blocks_; }
  size_t bytes() const { return shape_.bytes_per_block() * num_blocks_; }
  cpu::PagedKvLayer layer(int i);
  // Copies block `src` to block `dst` on every layer (copy-on-write).
  void CopyBlock(int src, int dst);

 private:
  KvCacheShape shape_;
  int num_blocks_;
  std::vector<cpu::AlignedBuffer<float>> k_;
  std::vector<cpu::AlignedBuffer<float>> v_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_KV_CACHE_H_
