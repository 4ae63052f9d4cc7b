// `mpirun -np N hydra serve --tp=N` through gRPC: the same greedy tokens as
// a world of one, and a SIGTERM to rank 0 drains and stops every rank with
// exit 0.
#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/server_process.h"
#include "tests/unit/test_model.h"

namespace hydra {
namespace {

using testing::ServerProcess;

// The pid of the hydra process with MPI rank `rank` among mpirun's children.
pid_t Rank(pid_t mpirun, int rank) {
  DIR* proc = opendir("/proc");
  pid_t found = -1;
  while (dirent* e = readdir(proc)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2 ||
        ppid != mpirun) {
      continue;
    }
    std::ifstream env("/proc/" + std::to_string(pid) + "/environ");
    const std::string all((std::istreambuf_iterator<char>(env)),
                          std::istreambuf_iterator<char>());
    if (all.find(std::string("OMPI_COMM_WORLD_RANK=0") + '\0') !=
        std::string::npos)
      found = pid;
  }
  closedir(proc);
  return found;
}

class TensorParallelServerTest : public ::testing::TestWithParam<int> {};

TEST_P(TensorParallelServerTest, GoldenThroughGrpcAndCleanShutdown) {
  HYDRA_REQUIRE_MODEL();
  const int ranks = GetParam();
  ServerProcess server(HYDRA_BINARY, testing::ModelDir().string(),
                       {"--tp=" + std::to_string(ranks)},
                       grpc::InsecureChannelCredentials(),
                       {HYDRA_MPIRUN, "--allow-run-as-root", "--oversubscribe",
                        "--mca", "mpi_yield_when_idle", "1", "-x",
                        "OMP_NUM_THREADS=1", "-np", std::to_string(ranks)});
  ASSERT_TRUE(server.WaitReady(std::chrono::seconds(120)));
  auto stub = server.NewStub();
  grpc::ClientContext info_context;
  v1::ModelInfo info;
  ASSERT_TRUE(
      stub->GetModelInfo(&info_context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.tensor_parallel_size(), ranks);
  // Each rank holds 1/N of the KV heads, so the same per-rank budget (64 MiB,
  // see ServerProcess) holds N times the tokens: stories15M's block of 16
  // tokens is 2 x 6 layers x 16 x (6 / N) heads x 48 x 4 bytes.
  const int64_t budget = int64_t{64} << 20;
  const int64_t block_bytes = int64_t{2} * 6 * 16 * (6 / ranks) * 48 * 4;
  EXPECT_EQ(info.kv_capacity_tokens(), budget / block_bytes * 16);
  EXPECT_GE(info.kv_capacity_tokens(),
            ranks * (budget / (int64_t{2} * 6 * 16 * 6 * 48 * 4) * 16));

  for (const auto& g : testing::LoadGolden()) {
    v1::GenerateRequest request;
    request.mutable_prompt_token_ids()->mutable_ids()->Add(g.prompt_ids.begin(),
                                                           g.prompt_ids.end());
    request.mutable_sampling()->set_temperature(0);
    const int max_tokens = 256 - static_cast<int>(g.prompt_ids.size());
    request.mutable_stopping()->set_max_tokens(max_tokens);
    grpc::ClientContext context;
    v1::GenerateResponse response;
    const grpc::Status status = stub->Generate(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const std::vector<int> expected(
        g.output_ids.begin(),
        g.output_ids.begin() +
            std::min<size_t>(g.output_ids.size(), max_tokens));
    EXPECT_EQ(std::vector<int>(response.token_ids().begin(),
                               response.token_ids().end()),
              expected)
        << g.prompt;
  }

  // Rank 0 reports the time its steps spend in collectives.
  EXPECT_GT(
      testing::MetricValue(server.Metrics(), "hydra_collective_seconds_count")
          .value_or(0),
      0);

  const pid_t rank0 = Rank(server.pid(), 0);
  ASSERT_GT(rank0, 0);
  kill(rank0, SIGTERM);
  // mpirun exits 0 only when every rank did.
  EXPECT_EQ(server.Wait(std::chrono::seconds(60)), 0);
}

INSTANTIATE_TEST_SUITE_P(Ranks, TensorParallelServerTest,
                         ::testing::Values(2, 3));

// The disk KV tier under tensor parallelism: each rank keeps its own shard
// of every block (its own fingerprint folder), a restarted job serves the
// prompt from them, and when one rank's shards are gone the ranks agree
// that the loads failed and recompute.
TEST(TensorParallelKvTierTest, EachRankKeepsItsShardAcrossARestart) {
  HYDRA_REQUIRE_MODEL();
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "hydra_tp_kv_tier";
  fs::remove_all(dir);
  std::mt19937 rng(3);
  std::vector<int> prompt(100);
  for (int& id : prompt) id = 3 + static_cast<int>(rng() % 30000);
  auto serve_once = [&](int* cached) {
    ServerProcess server(
        HYDRA_BINARY, testing::ModelDir().string(),
        {"--tp=2", "--kv_disk_cache_dir=" + dir.string()},
        grpc::InsecureChannelCredentials(),
        {HYDRA_MPIRUN, "--allow-run-as-root", "--oversubscribe", "--mca",
         "mpi_yield_when_idle", "1", "-x", "OMP_NUM_THREADS=1", "-np", "2"});
    EXPECT_TRUE(server.WaitReady(std::chrono::seconds(120)));
    v1::GenerateRequest request;
    request.mutable_prompt_token_ids()->mutable_ids()->Add(prompt.begin(),
                                                           prompt.end());
    request.mutable_sampling()->set_temperature(0);
    request.mutable_stopping()->set_max_tokens(8);
    request.mutable_stopping()->set_ignore_eos(true);
    grpc::ClientContext context;
    v1::GenerateResponse response;
    const grpc::Status status =
        server.NewStub()->Generate(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    *cached = response.usage().cached_prompt_tokens();
    kill(Rank(server.pid(), 0), SIGTERM);
    EXPECT_EQ(server.Wait(std::chrono::seconds(60)), 0);
    return std::vector<int>(response.token_ids().begin(),
                            response.token_ids().end());
  };
  int cached = -1;
  const std::vector<int> cold = serve_once(&cached);
  EXPECT_EQ(cached, 0);
  std::vector<fs::path> folders;
  for (const auto& e : fs::directory_iterator(dir)) folders.push_back(e.path());
  ASSERT_EQ(folders.size(), 2u) << "one folder per rank";
  for (const fs::path& folder : folders) {
    EXPECT_EQ(
        std::distance(fs::directory_iterator(folder), fs::directory_iterator()),
        6)
        << folder;
  }
  EXPECT_EQ(serve_once(&cached), cold);
  EXPECT_EQ(cached, 96);
  // One rank loses its shards: nothing may be served from the other's.
  for (const auto& e : fs::directory_iterator(folders[0])) fs::remove(e.path());
  EXPECT_EQ(serve_once(&cached), cold);
  EXPECT_EQ(cached, 0);
  fs::remove_all(dir);
}

// A worker rank that dies mid-stream must not leave the client hanging nor
// the job running: the stream fails and the whole job exits non-zero.
TEST(TensorParallelFailureTest, KilledWorkerFailsTheStreamAndEndsTheJob) {
  HYDRA_REQUIRE_MODEL();
  ServerProcess server(
      HYDRA_BINARY, testing::ModelDir().string(), {"--tp=2"},
      grpc::InsecureChannelCredentials(),
      {HYDRA_MPIRUN, "--allow-run-as-root", "--oversubscribe", "--mca",
       "mpi_yield_when_idle", "1", "-x", "OMP_NUM_THREADS=1", "-np", "2"});
  ASSERT_TRUE(server.WaitReady(std::chrono::seconds(120)));
  auto stub = server.NewStub();
  v1::GenerateRequest request;
  request.set_prompt("Once upon a time");
  request.mutable_sampling()->set_temperature(0);
  request.mutable_stopping()->set_max_tokens(250);
  request.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));  // generation is under way
  const pid_t worker = Rank(server.pid(), 1);
  ASSERT_GT(worker, 0);
  kill(worker, SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  int after = 0;
  while (reader->Read(&message)) ++after;
  const grpc::Status status = reader->Finish();
  // Open MPI ends the whole job when a rank dies; the client sees the
  // connection go (UNAVAILABLE), never a hang.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_LT(after, 249);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_NE(server.Wait(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace hydra
