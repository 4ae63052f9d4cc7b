// A fast 64-bit checksum for data at rest (KV block files): catches
// truncation, bit rot and torn writes, not tampering. Stable across runs,
// builds and machines of the same byte order, unlike absl::Hash.
#ifndef HYDRA_COMMON_CHECKSUM_H_
#define HYDRA_COMMON_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace hydra {

inline uint64_t Checksum64(std::span<const std::byte> data, uint64_t seed = 0) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t h = seed ^ (data.size() * kMul);
  auto mix = [&h](uint64_t w) {
    h ^= w * 0xbf58476d1ce4e5b9ull;
    h = (h << 27 | h >> 37) * kMul + 0x94d049bb133111ebull;
  };
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    mix(w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data.data() + i, data.size() - i);
  mix(tail);
  h ^= h >> 31;
  h *= 0xd6e8feb86659fd93ull;
  return h ^ (h >> 32);
}

}  // namespace hydra

#endif  // HYDRA_COMMON_CHECKSUM_H_
