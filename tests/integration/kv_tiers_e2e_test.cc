// Issue 16's KV tiers end to end, on real `hydra serve` processes: the disk
// tier survives a restart (the same prompt is served from it with the same
// greedy output), a corrupt block file and a changed model are detected and
// recomputed, and a host tier brings back blocks a small pool evicted.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/server_process.h"
#include "tests/unit/test_model.h"

namespace hydra {
namespace {

namespace fs = std::filesystem;
using testing::ServerProcess;

struct Answer {
  std::vector<int> tokens;
  int cached_prompt_tokens = -1;
};

Answer Greedy(ServerProcess& server, const std::vector<int>& prompt,
              int max_tokens) {
  v1::GenerateRequest r;
  r.mutable_prompt_token_ids()->mutable_ids()->Add(prompt.begin(),
                                                   prompt.end());
  r.mutable_sampling()->set_temperature(0);
  r.mutable_stopping()->set_max_tokens(max_tokens);
  r.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext context;
  v1::GenerateResponse response;
  const grpc::Status status =
      server.NewStub()->Generate(&context, r, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  Answer a;
  a.tokens.assign(response.token_ids().begin(), response.token_ids().end());
  a.cached_prompt_tokens = response.usage().cached_prompt_tokens();
  return a;
}

std::vector<int> RandomIds(std::mt19937& rng, int n) {
  std::vector<int> ids(n);
  for (int& id : ids) id = 3 + static_cast<int>(rng() % 30000);
  return ids;
}

double Metric(const ServerProcess& server, const std::string& series) {
  return testing::MetricValue(server.Metrics(), series).value_or(-1);
}

// Metrics follow the engine every 200 ms: waits for `series` to reach at
// least `value` (5 s at most) and returns its last value.
double WaitAtLeast(const ServerProcess& server, const std::string& series,
                   double value) {
  double last = -1;
  for (int i = 0; i < 100; ++i) {
    last = Metric(server, series);
    if (last >= value) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return last;
}

std::vector<fs::path> BlockFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() == ".kv") files.push_back(e.path());
  }
  return files;
}

class KvTiersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "hydra_kv_disk_tier";
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> DiskFlags() const {
    return {"--kv_disk_cache_dir=" + dir_.string(),
            "--kv_disk_cache_bytes=268435456"};
  }

  fs::path dir_;
};

TEST_F(KvTiersTest, DiskTierSurvivesRestartAndRefusesBadBlocks) {
  HYDRA_REQUIRE_MODEL();
  std::mt19937 rng(16);
  const std::vector<int> prompt = RandomIds(rng, 100);  // 6 full blocks
  constexpr int kFull = 96;
  Answer cold;
  {
    ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(),
                         DiskFlags());
    ASSERT_TRUE(server.WaitReady());
    cold = Greedy(server, prompt, 24);
    EXPECT_EQ(cold.cached_prompt_tokens, 0);
    ASSERT_EQ(cold.tokens.size(), 24u);
    EXPECT_EQ(server.Stop(), 0);
  }
  // The 6 prompt blocks and the 1 full output block, one file each.
  ASSERT_EQ(BlockFiles(dir_).size(), 7u);

  {
    ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(),
                         DiskFlags());
    ASSERT_TRUE(server.WaitReady());
    const Answer warm = Greedy(server, prompt, 24);
    EXPECT_EQ(warm.cached_prompt_tokens, kFull);
    EXPECT_EQ(warm.tokens, cold.tokens);
    EXPECT_TRUE(
        server.WaitMetric("hydra_kv_tier_hits_total{tier=\"disk\"}", kFull));
    EXPECT_GE(WaitAtLeast(server,
                          "hydra_kv_tier_load_seconds_count{tier=\"disk\"}", 1),
              1);
    EXPECT_EQ(server.Stop(), 0);
  }

  // Flip a byte in the middle of every file's K/V: each load fails its
  // checksum, so nothing is served from disk and the output is unchanged.
  for (const fs::path& file : BlockFiles(dir_)) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(file) / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    f.write(&c, 1);
  }
  {
    ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(),
                         DiskFlags());
    ASSERT_TRUE(server.WaitReady());
    const Answer corrupt = Greedy(server, prompt, 24);
    EXPECT_EQ(corrupt.cached_prompt_tokens, 0);
    EXPECT_EQ(corrupt.tokens, cold.tokens);
    EXPECT_TRUE(server.WaitMetric(
        "hydra_kv_tier_load_failures_total{tier=\"disk\"}", 6));
    EXPECT_EQ(server.Stop(), 0);
  }
  // Recomputed, the blocks were written again: the next start reuses them.
  {
    ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(),
                         DiskFlags());
    ASSERT_TRUE(server.WaitReady());
    const Answer again = Greedy(server, prompt, 24);
    EXPECT_EQ(again.cached_prompt_tokens, kFull);
    EXPECT_EQ(again.tokens, cold.tokens);
    EXPECT_EQ(server.Stop(), 0);
  }

  // The same weights under an edited config.json: another fingerprint, so
  // another folder, and nothing of the first configuration is served.
  const fs::path edited = fs::path(::testing::TempDir()) / "hydra_kv_edited";
  fs::remove_all(edited);
  fs::create_directories(edited);
  for (const auto& e : fs::directory_iterator(testing::ModelDir())) {
    if (e.path().filename() == "config.json") {
      fs::copy_file(e.path(), edited / "config.json");
      std::ofstream(edited / "config.json", std::ios::app) << "\n";
    } else {
      fs::create_symlink(fs::absolute(e.path()), edited / e.path().filename());
    }
  }
  {
    ServerProcess server(HYDRA_BINARY, edited.string(), DiskFlags());
    ASSERT_TRUE(server.WaitReady());
    const Answer other = Greedy(server, prompt, 24);
    EXPECT_EQ(other.cached_prompt_tokens, 0);
    EXPECT_EQ(other.tokens, cold.tokens);
    EXPECT_EQ(server.Stop(), 0);
  }
  int folders = 0;
  for (const auto& e : fs::directory_iterator(dir_))
    folders += e.is_directory();
  EXPECT_EQ(folders, 2);
  fs::remove_all(edited);
}

// A pool of 18 blocks with a host or a disk tier: a document evicted from
// the pool by other prompts comes back from the tier, with the same output.
class TierUnderPressureTest : public KvTiersTest,
                              public ::testing::WithParamInterface<bool> {};

TEST_P(TierUnderPressureTest, BringsBackBlocksThePoolEvicted) {
  HYDRA_REQUIRE_MODEL();
  const bool host = GetParam();
  const std::string tier = host ? "host" : "disk";
  std::vector<std::string> flags = {"--kv_cache_bytes=4194304"};
  if (host) {
    flags.push_back("--kv_host_cache_bytes=67108864");
  } else {
    for (const std::string& f : DiskFlags()) flags.push_back(f);
  }
  ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(), flags);
  ASSERT_TRUE(server.WaitReady());
  std::mt19937 rng(7);
  const std::vector<int> doc = RandomIds(rng, 120);  // 7 full blocks
  const Answer first = Greedy(server, doc, 16);
  for (int i = 0; i < 6; ++i) Greedy(server, RandomIds(rng, 120), 16);
  const Answer back = Greedy(server, doc, 16);
  EXPECT_EQ(back.tokens, first.tokens);
  EXPECT_EQ(back.cached_prompt_tokens, 112);
  EXPECT_TRUE(server.WaitMetric("hydra_kv_cache_blocks{state=\"used\"}", 0));
  EXPECT_GE(WaitAtLeast(server,
                        "hydra_kv_tier_hits_total{tier=\"" + tier + "\"}", 16),
            16);
  EXPECT_GT(Metric(server, "hydra_kv_tier_bytes{tier=\"" + tier + "\"}"), 0);
  EXPECT_EQ(server.Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Tiers, TierUnderPressureTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Host" : "Disk";
                         });

}  // namespace
}  // namespace hydra
