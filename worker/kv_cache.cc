#include "worker/kv_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hydra::worker {

absl::StatusOr<int> KvCacheShape::BlocksForBudget(size_t budget_bytes) const {
  const size_t per_block = bytes_per_block();
  const size_t blocks = per_block == 0 ? 0 : budget_bytes / per_block;
  if (blocks == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache budget of ", budget_bytes,
                     " bytes holds no block; one block of ", block_size,
                     " tokens needs ", per_block, " bytes"));
  }
  return static_cast<int>(std::min<size_t>(blocks, 1u << 30));
}

KvCache::KvCache(const KvCacheShape& shape, int num_blocks)
    : shape_(shape), num_blocks_(num_blocks) {
  const size_t floats =
      size_t(num_blocks) * shape.block_size * shape.kv_heads * shape.head_dim;
  k_.reserve(shape.num_layers);
  v_.reserve(shape.num_layers);
  for (int l = 0; l < shape.num_layers; ++l) {
    k_.emplace_back(floats);
    v_.emplace_back(floats);
  }
}

void KvCache::CopyBlock(int src, int dst) {
  const size_t floats =
      size_t(shape_.block_size) * shape_.kv_heads * shape_.head_dim;
  for (int l = 0; l < shape_.num_layers; ++l) {
    std::copy_n(k_[l].data() + src * floats, floats,
                k_[l].data() + dst * floats);
    std::copy_n(v_[l].data() + src * floats, floats,
                v_[l].data() + dst * floats);
  }
}

cpu::PagedKvLayer KvCache::layer(int i) {
  return {k_[i].data(),      v_[i].data(),    num_blocks_,
          shape_.block_size, shape_.kv_heads, shape_.head_dim};
}

}  // namespace hydra::worker
