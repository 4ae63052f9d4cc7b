// This rank's KV tiers below the pool: host memory and a folder of block
// files, each block under its prefix-cache hash. The BlockManager on rank 0
// decides what each tier holds (scheduler/kv_tier_index.h) and says so in
// every StepPlan; this class only carries out a plan's saves, loads and
// drops, so it needs no policy of its own.
//
// Disk writes go to a background thread: a save copies the block out of the
// pool and returns; a load of a block still being written is served from
// the copy. Files live in <dir>/<fingerprint>/, so a configuration that
// computes different K/V never sees another's blocks.
#ifndef HYDRA_WORKER_KV_TIER_STORE_H_
#define HYDRA_WORKER_KV_TIER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hydra/internal/step.pb.h"
#include "worker/kv_block_file.h"

namespace hydra::worker {

struct KvTierOptions {
  size_t host_bytes = 0;  // 0: no host tier
  std::string disk_dir;   // empty: no disk tier
  size_t disk_bytes = 0;
  bool enabled() const { return host_bytes > 0 || !disk_dir.empty(); }
};

class KvTierStore {
 public:
  // `fingerprint` (worker/kv_fingerprint.h) names the configuration;
  // `block_bytes` is one pool block's K/V on this rank. Creates the disk
  // folder, removes temporaries a crash left, and refuses a folder it
  // cannot write.
  static absl::StatusOr<std::unique_ptr<KvTierStore>> Open(
      const KvTierOptions& options, uint64_t fingerprint, size_t block_bytes);
  ~KvTierStore();  // finishes the writes in flight

  uint64_t fingerprint() const { return fingerprint_; }
  // Blocks each tier may hold within its byte budget.
  int host_capacity_blocks() const { return host_capacity_; }
  int disk_capacity_blocks() const { return disk_capacity_; }
  size_t block_bytes() const { return block_bytes_; }
  const std::filesystem::path& disk_folder() const { return folder_; }

  // The blocks an earlier run left on disk, least recently written first
  // (unreadable headers skipped). Rank 0 hands them to the BlockManager.
  std::vector<KvBlockFileInfo> DiskInventory() const;

  // Carries out `plan`'s kv_saves and kv_drops. `read_block` copies one
  // pool block's bytes out.
  void SaveAndDrop(
      const internal::StepPlan& plan,
      absl::FunctionRef<void(int, std::span<std::byte>)> read_block);
  // Carries out `plan`'s kv_loads (after SaveAndDrop of the same plan):
  // `write_block` copies bytes into one pool block. `load_ok[i]` is set to 1
  // when load i arrived intact, else 0 (and a corrupt file is removed).
  // Safe to run beside the step's forward pass: it touches only the loads'
  // target blocks and its own state.
  void Load(
      const internal::StepPlan& plan,
      absl::FunctionRef<void(int, std::span<const std::byte>)> write_block,
      std::vector<float>& load_ok);
  // Time the last Load spent on each tier.
  absl::Duration last_load_time(internal::KvTier tier) const {
    return tier == internal::KV_TIER_HOST ? host_load_time_ : disk_load_time_;
  }
  // Waits until every write handed to the background thread is on disk.
  void Flush();

 private:
  using Bytes = std::shared_ptr<const std::vector<std::byte>>;
  struct Job {
    bool write;  // else remove
    uint64_t hash;
    KvBlockFileInfo info;
    Bytes payload;
  };

  KvTierStore(const KvTierOptions& options, uint64_t fingerprint,
              size_t block_bytes, std::filesystem::path folder);
  std::filesystem::path PathOf(uint64_t hash) const;
  bool LoadFromDisk(uint64_t hash, std::span<std::byte> out);
  void Enqueue(Job job);
  void WriterLoop();

  const uint64_t fingerprint_;
  const size_t block_bytes_;
  const std::filesystem::path folder_;
  int host_capacity_ = 0;
  int disk_capacity_ = 0;
  std::unordered_map<uint64_t, std::vector<std::byte>> host_;
  absl::Duration host_load_time_;
  absl::Duration disk_load_time_;

  absl::Mutex mu_;
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  // The newest bytes of blocks queued for writing, by hash.
  std::unordered_map<uint64_t, Bytes> unwritten_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t failed_writes_ = 0;  // the writer thread's
  std::thread writer_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_KV_TIER_STORE_H_
