#include "worker/kv_tier_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hydra::worker {
namespace {

constexpr char kSuffix[] = ".kv";

}  // namespace

absl::StatusOr<std::unique_ptr<KvTierStore>> KvTierStore::Open(
    const KvTierOptions& options, uint64_t fingerprint, size_t block_bytes) {
  std::filesystem::path folder;
  if (!options.disk_dir.empty()) {
    folder = std::filesystem::path(options.disk_dir) /
             absl::StrFormat("%016x", fingerprint);
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kv_disk_cache_dir: cannot create ", folder.string(),
                       ": ", ec.message()));
    }
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
      if (entry.path().extension() == ".tmp") {
        std::filesystem::remove(entry.path(), ec);
      }
    }
    const std::filesystem::path probe = folder / "write_probe.tmp";
    const std::vector<std::byte> none;
    if (absl::Status s = WriteKvBlockFile(probe, {}, none); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kv_disk_cache_dir: ", s.message()));
    }
    std::filesystem::remove(probe, ec);
  }
  return std::unique_ptr<KvTierStore>(
      new KvTierStore(options, fingerprint, block_bytes, std::move(folder)));
}

KvTierStore::KvTierStore(const KvTierOptions& options, uint64_t fingerprint,
                         size_t block_bytes, std::filesystem::path folder)
    : fingerprint_(fingerprint),
      block_bytes_(block_bytes),
      folder_(std::move(folder)) {
  // A file holds a header and a block's tokens besides the K/V: a few
  // hundred bytes, counted so the folder stays within its budget.
  const size_t file_bytes = block_bytes + 4096;
  host_capacity_ = static_cast<int>(
      std::min<size_t>(options.host_bytes / block_bytes, 1 << 30));
  if (!folder_.empty()) {
    disk_capacity_ = static_cast<int>(
        std::min<size_t>(options.disk_bytes / file_bytes, 1 << 30));
    writer_ = std::thread([this] { WriterLoop(); });
  }
}

KvTierStore::~KvTierStore() {
  if (!writer_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
}

std::filesystem::path KvTierStore::PathOf(uint64_t hash) const {
  return folder_ / absl::StrFormat("%016x%s", hash, kSuffix);
}

std::vector<KvBlockFileInfo> KvTierStore::DiskInventory() const {
  std::vector<std::pair<std::filesystem::file_time_type, KvBlockFileInfo>>
      found;
  if (folder_.empty()) return {};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder_, ec)) {
    if (entry.path().extension() != kSuffix) continue;
    absl::StatusOr<KvBlockFileInfo> info = ReadKvBlockFileInfo(entry.path());
    if (!info.ok() || info->fingerprint != fingerprint_ ||
        info->payload_bytes != block_bytes_ ||
        entry.path() != PathOf(info->hash)) {
      continue;  // a load would refuse it; the LRU never learns of it
    }
    found.emplace_back(entry.last_write_time(ec), *std::move(info));
  }
  std::stable_sort(
      found.begin(), found.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<KvBlockFileInfo> out;
  out.reserve(found.size());
  for (auto& [time, info] : found) out.push_back(std::move(info));
  return out;
}

void KvTierStore::SaveAndDrop(
    const internal::StepPlan& plan,
    absl::FunctionRef<void(int, std::span<std::byte>)> read_block) {
  for (const internal::KvSave& save : plan.kv_saves()) {
    std::vector<std::byte> bytes(block_bytes_);
    read_block(save.block(), bytes);
    if (save.tier() == internal::KV_TIER_HOST) {
      host_[save.hash()] = std::move(bytes);
      continue;
    }
    KvBlockFileInfo info{fingerprint_,
                         save.hash(),
                         save.parent_hash(),
                         {save.tokens().begin(), save.tokens().end()},
                         block_bytes_};
    Enqueue({true, save.hash(), std::move(info),
             std::make_shared<const std::vector<std::byte>>(std::move(bytes))});
  }
  // The plan's loads read before its drops delete (drops come from
  // evictions planned a step earlier, never of a block loaded now).
  for (const internal::KvDrop& drop : plan.kv_drops()) {
    if (drop.tier() == internal::KV_TIER_HOST) {
      host_.erase(drop.hash());
    } else {
      Enqueue({false, drop.hash(), {}, nullptr});
    }
  }
}

void KvTierStore::Load(
    const internal::StepPlan& plan,
    absl::FunctionRef<void(int, std::span<const std::byte>)> write_block,
    std::vector<float>& load_ok) {
  host_load_time_ = disk_load_time_ = absl::ZeroDuration();
  load_ok.assign(plan.kv_loads_size(), 0.0f);
  std::vector<std::byte> scratch;
  for (int i = 0; i < plan.kv_loads_size(); ++i) {
    const internal::KvLoad& load = plan.kv_loads(i);
    const absl::Time start = absl::Now();
    if (load.tier() == internal::KV_TIER_HOST) {
      const auto it = host_.find(load.hash());
      if (it != host_.end()) {
        write_block(load.block(), it->second);
        load_ok[i] = 1;
      }
      host_load_time_ += absl::Now() - start;
      continue;
    }
    scratch.resize(block_bytes_);
    if (LoadFromDisk(load.hash(), scratch)) {
      write_block(load.block(), scratch);
      load_ok[i] = 1;
    }
    disk_load_time_ += absl::Now() - start;
  }
}

bool KvTierStore::LoadFromDisk(uint64_t hash, std::span<std::byte> out) {
  {
    absl::MutexLock lock(&mu_);
    const auto it = unwritten_.find(hash);
    if (it != unwritten_.end()) {
      std::memcpy(out.data(), it->second->data(), out.size());
      return true;
    }
  }
  const absl::Status read =
      ReadKvBlockFile(PathOf(hash), fingerprint_, hash, out);
  if (read.ok()) return true;
  // Recomputed instead, and saved again once computed.
  std::fprintf(stderr, "[hydra] warning: KV disk tier: %s; recomputed\n",
               std::string(read.message()).c_str());
  Enqueue({false, hash, {}, nullptr});
  return false;
}

void KvTierStore::Enqueue(Job job) {
  absl::MutexLock lock(&mu_);
  if (job.write) {
    unwritten_[job.hash] = job.payload;
  } else {
    unwritten_.erase(job.hash);
  }
  jobs_.push_back(std::move(job));
}

void KvTierStore::Flush() {
  if (!writer_.joinable()) return;
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return jobs_.empty() && !busy_;
  };
  mu_.Await(absl::Condition(&idle));
}

void KvTierStore::WriterLoop() {
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !jobs_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;  // stopping, and every write is done
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    const std::filesystem::path path = PathOf(job.hash);
    if (job.write) {
      if (absl::Status s = WriteKvBlockFile(path, job.info, *job.payload);
          !s.ok()) {
        // The first few say why (a full disk, say); a failed write only
        // costs the block's reuse.
        if (++failed_writes_ <= 3) {
          std::fprintf(stderr, "[hydra] warning: KV disk tier: %s\n",
                       std::string(s.message()).c_str());
        }
      }
    } else {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
    absl::MutexLock lock(&mu_);
    busy_ = false;
    // Served from the copy until now; from the file from here on (unless a
    // newer write of the same block is queued).
    const auto it = unwritten_.find(job.hash);
    if (it != unwritten_.end() && it->second == job.payload) {
      unwritten_.erase(it);
    }
  }
}

}  // namespace hydra::worker
