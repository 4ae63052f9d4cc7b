// The key of everything that changes the K/V a rank computes for a token
// sequence: the model's files, the number formats, the tensor-parallel
// split and the block size. Stored KV blocks (the disk tier) are kept under
// it, so blocks are never reused by a configuration that would have
// computed different values.
#ifndef HYDRA_WORKER_KV_FINGERPRINT_H_
#define HYDRA_WORKER_KV_FINGERPRINT_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace hydra::worker {

struct KvFingerprintInputs {
  std::string weight_dtype;    // resolved: "fp32", "bf16", ...
  std::string kv_cache_dtype;  // resolved
  int tp_size = 1;
  int tp_rank = 0;
  int block_size = 16;
};

// Hashes config.json (shapes, RoPE settings) in full and each weight file
// by name, size and content sampled at 16 places (1 MiB each): a changed
// checkpoint changes the fingerprint without reading gigabytes at start-up.
absl::StatusOr<uint64_t> KvFingerprint(const std::filesystem::path& model_dir,
                                       const KvFingerprintInputs& inputs);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_KV_FINGERPRINT_H_
