#include "worker/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hydra::worker {

absl::StatusOr<int> KvCacheShape::BlocksForBudget(size_t budget_bytes) const {
  const size_t per_block = bytes_per_block();
  const size_t blocks = per_block == 0 ? 0 : budget_bytes / per_block;
  if (blocks == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache budget of ", budget_bytes,
        " bytes holds no block; one block of ", block_size, " tokens needs ",
        per_block, " bytes (", std::string(cpu::KvTypeName(type)), " KV)"));
  }
  return static_cast<int>(std::min<size_t>(blocks, 1u << 30));
}

ReservedMemory::ReservedMemory(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<std::byte*>(p);
}

ReservedMemory::~ReservedMemory() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

ReservedMemory::ReservedMemory(ReservedMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

ReservedMemory& ReservedMemory::operator=(ReservedMemory&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

KvCache::KvCache(const KvCacheShape& shape, int num_blocks)
    : shape_(shape),
      num_blocks_(num_blocks),
      memory_(size_t(shape.num_layers) * 2 *
              (values_bytes() + scales_bytes())) {}

size_t KvCache::values_bytes() const {
  const size_t per_head =
      shape_.type == cpu::KvType::kInt8
          ? size_t(shape_.head_dim)
          : cpu::KvBytesPerHead(shape_.type, shape_.head_dim);
  return size_t(num_blocks_) * shape_.block_size * shape_.kv_heads * per_head;
}

size_t KvCache::scales_bytes() const {
  if (shape_.type != cpu::KvType::kInt8) return 0;
  return size_t(num_blocks_) * shape_.block_size * shape_.kv_heads *
         sizeof(float);
}

// Layer l's region: K values, V values, K scales, V scales.
std::byte* KvCache::k(int l) const {
  return memory_.data() + size_t(l) * 2 * (values_bytes() + scales_bytes());
}
std::byte* KvCache::v(int l) const { return k(l) + values_bytes(); }
float* KvCache::k_scale(int l) const {
  return reinterpret_cast<float*>(k(l) + 2 * values_bytes());
}
float* KvCache::v_scale(int l) const {
  return reinterpret_cast<float*>(k(l) + 2 * values_bytes() + scales_bytes());
}

template <typename F>
void KvCache::ForEachRegion(int block, F f) const {
  const size_t block_values = values_bytes() / num_blocks_;
  const size_t block_scales = scales_bytes() / num_blocks_;
  for (int l = 0; l < shape_.num_layers; ++l) {
    for (std::byte* base : {k(l), v(l)}) {
      f(base + size_t(block) * block_values, block_values);
    }
    if (block_scales == 0) continue;
    for (float* base : {k_scale(l), v_scale(l)}) {
      f(reinterpret_cast<std::byte*>(base) + size_t(block) * block_scales,
        block_scales);
    }
  }
}

void KvCache::CopyBlock(int src, int dst) {
  const size_t block_values = values_bytes() / num_blocks_;
  const size_t block_scales = scales_bytes() / num_blocks_;
  for (int l = 0; l < shape_.num_layers; ++l) {
    for (std::byte* base : {k(l), v(l)}) {
      std::memcpy(base + dst * block_values, base + src * block_values,
                  block_values);
    }
    if (block_scales == 0) continue;
    for (float* base : {k_scale(l), v_scale(l)}) {
      auto* bytes = reinterpret_cast<std::byte*>(base);
      std::memcpy(bytes + dst * block_scales, bytes + src * block_scales,
                  block_scales);
    }
  }
}

void KvCache::ReadBlock(int block, std::span<std::byte> out) const {
  size_t at = 0;
  ForEachRegion(block, [&](std::byte* from, size_t n) {
    std::memcpy(out.data() + at, from, n);
    at += n;
  });
}

void KvCache::WriteBlock(int block, std::span<const std::byte> in) {
  size_t at = 0;
  ForEachRegion(block, [&](std::byte* to, size_t n) {
    std::memcpy(to, in.data() + at, n);
    at += n;
  });
}

cpu::PagedKvLayer KvCache::layer(int i) const {
  const bool scaled = shape_.type == cpu::KvType::kInt8;
  return {.k = k(i),
          .v = v(i),
          .k_scale = scaled ? k_scale(i) : nullptr,
          .v_scale = scaled ? v_scale(i) : nullptr,
          .type = shape_.type,
          .num_blocks = num_blocks_,
          .block_size = shape_.block_size,
          .kv_heads = shape_.kv_heads,
          .head_dim = shape_.head_dim};
}

}  // namespace hydra::worker
