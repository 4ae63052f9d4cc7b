// The worker's side of the KV tiers: block files refuse what they must not
// serve (truncation, corruption, another configuration), the store carries
// out a plan's saves, loads and drops and finds a previous run's blocks,
// and the fingerprint changes with whatever changes the K/V.
#include "worker/kv_tier_store.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/test_model.h"
#include "worker/kv_block_file.h"
#include "worker/kv_fingerprint.h"

namespace hydra::worker {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

class KvTierStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "kv_tier_store_test";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(KvTierStoreTest, BlockFileRoundTripsAndRefusesDamage) {
  const std::vector<std::byte> payload = RandomBytes(4096, 1);
  const KvBlockFileInfo info{7, 42, 41, {1, 2, 3, 4}, payload.size()};
  const fs::path path = dir_ / "block.kv";
  ASSERT_TRUE(WriteKvBlockFile(path, info, payload).ok());
  std::vector<std::byte> back(payload.size());
  ASSERT_TRUE(ReadKvBlockFile(path, 7, 42, back).ok());
  EXPECT_EQ(back, payload);
  const auto read_info = ReadKvBlockFileInfo(path);
  ASSERT_TRUE(read_info.ok());
  EXPECT_EQ(read_info->tokens, info.tokens);
  EXPECT_EQ(read_info->parent_hash, 41u);

  // Another configuration, another block, another size.
  EXPECT_EQ(ReadKvBlockFile(path, 8, 42, back).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadKvBlockFile(path, 7, 43, back).code(),
            absl::StatusCode::kDataLoss);
  std::vector<std::byte> small(100);
  EXPECT_EQ(ReadKvBlockFile(path, 7, 42, small).code(),
            absl::StatusCode::kDataLoss);
  // One flipped bit anywhere in the K/V fails the checksum.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) - 1000));
    f.put('\x01');
  }
  const absl::Status corrupt = ReadKvBlockFile(path, 7, 42, back);
  EXPECT_EQ(corrupt.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(corrupt.message().find("checksum"), std::string::npos) << corrupt;
  // Truncated.
  ASSERT_TRUE(WriteKvBlockFile(path, info, payload).ok());
  fs::resize_file(path, fs::file_size(path) - 10);
  EXPECT_EQ(ReadKvBlockFile(path, 7, 42, back).code(),
            absl::StatusCode::kDataLoss);
  fs::resize_file(path, 10);
  EXPECT_FALSE(ReadKvBlockFileInfo(path).ok());
}

TEST_F(KvTierStoreTest, CarriesOutAPlanAndFindsTheBlocksAfterARestart) {
  constexpr size_t kBlockBytes = 2048;
  std::vector<std::vector<std::byte>> pool = {
      RandomBytes(kBlockBytes, 1), RandomBytes(kBlockBytes, 2),
      RandomBytes(kBlockBytes, 3), std::vector<std::byte>(kBlockBytes)};
  auto read = [&](int b, std::span<std::byte> out) {
    std::copy(pool[b].begin(), pool[b].end(), out.begin());
  };
  auto write = [&](int b, std::span<const std::byte> in) {
    pool[b].assign(in.begin(), in.end());
  };
  const KvTierOptions options{kBlockBytes * 4, dir_.string(), 1 << 20};
  const std::vector<std::byte> original0 = pool[0], original1 = pool[1];
  {
    auto store = KvTierStore::Open(options, 99, kBlockBytes);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->host_capacity_blocks(), 4);
    EXPECT_GT((*store)->disk_capacity_blocks(), 100);
    internal::StepPlan plan;
    for (int b = 0; b < 3; ++b) {
      auto* save = plan.add_kv_saves();
      save->set_tier(b == 0 ? internal::KV_TIER_HOST : internal::KV_TIER_DISK);
      save->set_block(b);
      save->set_hash(100 + b);
      save->set_parent_hash(b == 0 ? 0 : 99 + b);
      for (int t = 0; t < 4; ++t) save->add_tokens(b * 4 + t);
    }
    // Loaded in the same plan: the disk block comes from the copy still
    // being written, the host block from memory.
    auto* from_host = plan.add_kv_loads();
    from_host->set_tier(internal::KV_TIER_HOST);
    from_host->set_block(3);
    from_host->set_hash(100);
    auto* missing = plan.add_kv_loads();
    missing->set_tier(internal::KV_TIER_DISK);
    missing->set_block(3);
    missing->set_hash(555);
    auto* from_disk = plan.add_kv_loads();
    from_disk->set_tier(internal::KV_TIER_DISK);
    from_disk->set_block(0);
    from_disk->set_hash(101);
    auto* drop = plan.add_kv_drops();
    drop->set_tier(internal::KV_TIER_DISK);
    drop->set_hash(102);
    std::vector<float> ok;
    (*store)->SaveAndDrop(plan, read);
    (*store)->Load(plan, write, ok);
    EXPECT_EQ(ok, (std::vector<float>{1, 0, 1}));
    EXPECT_EQ(pool[3], original0);
    EXPECT_EQ(pool[0], original1);
    (*store)->Flush();
  }
  // A new process: block 101 is on disk (102 was dropped), 100 was only in
  // host memory.
  auto store = KvTierStore::Open(options, 99, kBlockBytes);
  ASSERT_TRUE(store.ok());
  const std::vector<KvBlockFileInfo> inventory = (*store)->DiskInventory();
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_EQ(inventory[0].hash, 101u);
  EXPECT_EQ(inventory[0].parent_hash, 100u);
  EXPECT_EQ(inventory[0].tokens, (std::vector<int>{4, 5, 6, 7}));
  internal::StepPlan plan;
  auto* load = plan.add_kv_loads();
  load->set_tier(internal::KV_TIER_DISK);
  load->set_block(2);
  load->set_hash(101);
  std::vector<float> ok;
  (*store)->Load(plan, write, ok);
  EXPECT_EQ(ok, std::vector<float>{1});
  EXPECT_EQ(pool[2], original1);
  // Another configuration sees none of it.
  auto other = KvTierStore::Open(options, 98, kBlockBytes);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE((*other)->DiskInventory().empty());
}

TEST_F(KvTierStoreTest, AnUnwritableFolderIsRefusedNamingTheFlag) {
  const fs::path file = dir_ / "not_a_folder";
  std::ofstream(file) << "x";
  const auto store =
      KvTierStore::Open({0, (file / "sub").string(), 1 << 20}, 1, 1024);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("--kv_disk_cache_dir"),
            std::string::npos)
      << store.status();
}

TEST(KvFingerprintTest, ChangesWithWhatChangesTheKv) {
  HYDRA_REQUIRE_MODEL();
  const fs::path model = testing::ModelDir();
  const KvFingerprintInputs base{"fp32", "fp32", 1, 0, 16};
  const auto fp = KvFingerprint(model, base);
  ASSERT_TRUE(fp.ok()) << fp.status();
  EXPECT_EQ(*KvFingerprint(model, base), *fp);  // stable
  for (KvFingerprintInputs changed :
       {KvFingerprintInputs{"bf16", "fp32", 1, 0, 16},
        KvFingerprintInputs{"fp32", "int8", 1, 0, 16},
        KvFingerprintInputs{"fp32", "fp32", 2, 0, 16},
        KvFingerprintInputs{"fp32", "fp32", 2, 1, 16},
        KvFingerprintInputs{"fp32", "fp32", 1, 0, 32}}) {
    EXPECT_NE(*KvFingerprint(model, changed), *fp);
  }
  // The same files elsewhere share it; a config edit does not.
  const fs::path copy = fs::path(::testing::TempDir()) / "kv_fingerprint_copy";
  fs::remove_all(copy);
  fs::copy(model, copy, fs::copy_options::recursive);
  EXPECT_EQ(*KvFingerprint(copy, base), *fp);
  std::ofstream(copy / "config.json", std::ios::app) << " ";
  EXPECT_NE(*KvFingerprint(copy, base), *fp);
  fs::remove_all(copy);
}

}  // namespace
}  // namespace hydra::worker
