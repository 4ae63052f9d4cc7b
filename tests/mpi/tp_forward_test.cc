// Tensor parallelism under real MPI ranks: run with `mpirun -np N`. Rank 0
// runs the tests (each step's plan is broadcast to the workers); ranks
// 1..N-1 run the worker loop until rank 0 shuts them down.
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "gtest/gtest.h"
#include "tests/unit/batch_decode.h"
#include "tests/unit/test_model.h"
#include "worker/communicator.h"

namespace hydra::worker {
namespace {

Communicator* g_comm = nullptr;
ModelRunner* g_sharded =
    nullptr;  // rank 0's shard; the workers hold the others
constexpr int kBlockSize = 16;
constexpr int kBlocks = 4 * 17;

TEST(TensorParallelTest, GreedyTokensAndLogitsMatchAWorldOfOne) {
  const auto golden = testing::LoadGolden();
  std::vector<std::vector<int>> prompts;
  for (const auto& c : golden) prompts.push_back(c.prompt_ids);

  auto whole = ModelRunner::Load(testing::ModelDir(), kBlockSize, kBlocks);
  ASSERT_TRUE(whole.ok()) << whole.status();

  // Prompts prefilled in chunks of 3 and decoded together, on both.
  const auto split = testing::GreedyDecodeBatch(*g_sharded, prompts, 3, 5);
  const auto one = testing::GreedyDecodeBatch(**whole, prompts, 3, 5);
  for (size_t s = 0; s < prompts.size(); ++s) {
    SCOPED_TRACE(golden[s].prompt);
    EXPECT_EQ(split[s].output_ids, golden[s].output_ids);
    EXPECT_EQ(split[s].output_ids, one[s].output_ids);
    ASSERT_EQ(split[s].logits.size(), one[s].logits.size());
    float worst = 0;
    for (size_t t = 0; t < one[s].logits.size(); ++t) {
      for (size_t i = 0; i < one[s].logits[t].size(); ++i) {
        worst = std::max(
            worst, std::fabs(split[s].logits[t][i] - one[s].logits[t][i]));
      }
    }
    EXPECT_LE(worst, 1e-4f);
  }
}

TEST(TensorParallelTest, EachRankHoldsAboutOneNthOfTheWeights) {
  auto whole = ModelRunner::Load(testing::ModelDir(), kBlockSize, 1);
  ASSERT_TRUE(whole.ok());
  const double share =
      double(g_sharded->weight_bytes()) / (*whole)->weight_bytes();
  const double n = g_comm->size();
  // Norms are replicated and the vocabulary slice is padded: a little over 1/N.
  EXPECT_GT(share, 1.0 / n - 0.01);
  EXPECT_LT(share, 1.0 / n + 0.02);
  // The KV cache holds only this rank's KV heads: tokens per byte grow with N.
  EXPECT_EQ(g_sharded->kv_cache().shape().kv_heads * g_comm->size(),
            (*whole)->kv_cache().shape().kv_heads);
}

}  // namespace
}  // namespace hydra::worker

using hydra::worker::kBlocks;
using hydra::worker::kBlockSize;

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto comm = hydra::worker::CreateMpiCommunicator();
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().ToString().c_str());
    return 1;
  }
  hydra::worker::g_comm = comm->get();
  const std::filesystem::path model = hydra::testing::ModelDir();
  if (!std::filesystem::exists(model / "model.safetensors")) {
    if ((*comm)->rank() == 0)
      std::printf("SKIPPED: no converted model at %s\n", model.c_str());
    return 77;
  }
  auto runner =
      hydra::worker::ModelRunner::Load(model, kBlockSize, kBlocks, comm->get());
  if (!runner.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", (*comm)->rank(),
                 runner.status().ToString().c_str());
    return 1;
  }
  if ((*comm)->rank() != 0) {
    const absl::Status s = (*runner)->RunWorkerLoop();
    if (!s.ok())
      std::fprintf(stderr, "rank %d: %s\n", (*comm)->rank(),
                   s.ToString().c_str());
    return s.ok() ? 0 : 1;
  }
  hydra::worker::g_sharded = runner->get();
  const int result = RUN_ALL_TESTS();
  const absl::Status s = (*runner)->ShutdownWorkers();
  return s.ok() ? result : 1;
}
