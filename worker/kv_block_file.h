// The file one rank keeps for one KV block in the disk tier: a fixed
// header, the block's tokens, then its K/V bytes (KvCache::ReadBlock's
// layout). The header names the configuration (fingerprint) and the block
// (its hash chain link), and a checksum covers everything after it, so a
// truncated, corrupt or foreign file is refused rather than served.
#ifndef HYDRA_WORKER_KV_BLOCK_FILE_H_
#define HYDRA_WORKER_KV_BLOCK_FILE_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hydra::worker {

struct KvBlockFileInfo {
  uint64_t fingerprint = 0;
  uint64_t hash = 0;
  uint64_t parent_hash = 0;
  std::vector<int> tokens;
  uint64_t payload_bytes = 0;
};

// Writes the file atomically (a temporary next to it, then a rename): a
// crash leaves the old file or none, never half of one.
absl::Status WriteKvBlockFile(const std::filesystem::path& path,
                              const KvBlockFileInfo& info,
                              std::span<const std::byte> payload);

// The header and tokens only (the disk tier's inventory at start-up).
absl::StatusOr<KvBlockFileInfo> ReadKvBlockFileInfo(
    const std::filesystem::path& path);

// Reads the K/V bytes into `payload`, refusing a file whose magic,
// fingerprint, hash, size or checksum is not what is expected.
absl::Status ReadKvBlockFile(const std::filesystem::path& path,
                             uint64_t fingerprint, uint64_t hash,
                             std::span<std::byte> payload);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_KV_BLOCK_FILE_H_
