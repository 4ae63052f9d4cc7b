// NCCL in a world of one, through the same code path as N ranks: the unique
// id goes over the host communicator, the forward's all-reduces and the
// vocabulary all-gather run on the device, and the outputs stay golden.
#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/batch_decode.h"
#include "tests/unit/test_model.h"
#include "worker/cuda/cuda_runner.h"
#include "worker/cuda/nccl_communicator.h"

namespace hydra::gpu {
namespace {

TEST(NcclCommunicatorTest, WorldOfOneCollectivesOnDeviceMemory) {
  HYDRA_REQUIRE_GPU();
  worker::LocalCommunicator host;
  auto comm = NcclCommunicator::Create(&host);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_EQ((*comm)->rank(), 0);
  EXPECT_EQ((*comm)->size(), 1);
  const auto x = testing::Random(1000, 1);
  auto d_x = testing::Upload<float>(x);
  ASSERT_TRUE((*comm)->AllReduceSum({d_x.data(), x.size()}).ok());
  EXPECT_EQ(testing::Download(d_x), x);
  auto d_out = testing::Upload<float>(std::vector<float>(x.size()));
  ASSERT_TRUE((*comm)
                  ->AllGather({d_x.data(), x.size()}, {d_out.data(), x.size()})
                  .ok());
  EXPECT_EQ(testing::Download(d_out), x);
  // A mis-sized gather is refused before NCCL sees it.
  EXPECT_FALSE((*comm)->AllGather({d_x.data(), 10}, {d_out.data(), 11}).ok());
  std::string bytes = "plan";
  EXPECT_TRUE((*comm)->Broadcast(bytes, 0).ok());
  EXPECT_EQ(bytes, "plan");
}

TEST(NcclRunnerTest, ForcedCollectivesKeepTheGoldenOutputs) {
  HYDRA_REQUIRE_GPU();
  HYDRA_REQUIRE_MODEL();
  worker::LocalCommunicator host;
  CudaRunnerOptions options;
  options.dtype = DType::kF32;
  options.num_blocks = 16;
  options.max_tokens = 512;
  options.max_seqs = 16;
  options.force_collectives = true;
  auto runner = CudaRunner::Load(hydra::testing::ModelDir(), options, &host);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const auto golden = hydra::testing::LoadGolden();
  for (size_t i = 0; i < std::min<size_t>(golden.size(), 3); ++i) {
    const auto result = hydra::testing::GreedyDecodeBatchOn(
        **runner, 16, (*runner)->num_blocks(), {golden[i].prompt_ids}, 1 << 20,
        1);
    EXPECT_EQ(result[0].output_ids, golden[i].output_ids) << golden[i].prompt;
  }
}

}  // namespace
}  // namespace hydra::gpu
