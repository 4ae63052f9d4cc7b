// The CUDA runner on stories15M: the golden greedy outputs with FP32
// weights (all tokens) and BF16 weights (the first 32), batched and chunked
// steps, CUDA graph replay against eager runs, and sampling on the device.
#include <algorithm>
#include <numeric>

#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/batch_decode.h"
#include "tests/unit/test_model.h"
#include "worker/cuda/cuda_runner.h"
#include "worker/model_runner.h"

namespace hydra::gpu {
namespace {

constexpr int kBlockSize = 16;

class CudaForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HYDRA_REQUIRE_GPU();
    HYDRA_REQUIRE_MODEL();
  }
  static std::unique_ptr<CudaRunner> Load(DType dtype, int num_blocks,
                                          bool graphs = true) {
    CudaRunnerOptions options;
    options.dtype = dtype;
    options.block_size = kBlockSize;
    options.num_blocks = num_blocks;
    options.max_tokens = 1024;
    options.max_seqs = 64;
    options.cuda_graphs = graphs;
    auto runner = CudaRunner::Load(hydra::testing::ModelDir(), options);
    EXPECT_TRUE(runner.ok()) << runner.status();
    return runner.ok() ? std::move(*runner) : nullptr;
  }
};

TEST_F(CudaForwardTest, Fp32ReproducesTheGoldenGreedyOutputs) {
  auto runner = Load(DType::kF32, 16);
  ASSERT_NE(runner, nullptr);
  for (const auto& c : hydra::testing::LoadGolden()) {
    SCOPED_TRACE(c.prompt);
    const auto result = hydra::testing::GreedyDecodeBatchOn(
        *runner, kBlockSize, runner->num_blocks(), {c.prompt_ids}, 1 << 20, 1);
    ASSERT_EQ(result.size(), 1u);
    EXPECT_EQ(result[0].output_ids, c.output_ids);
    const std::vector<float>& first = result[0].logits.at(0);
    for (const auto& [id, logit] : c.first_step_top5) {
      EXPECT_NEAR(first[id], logit, 1e-3) << "token " << id;
    }
  }
}

TEST_F(CudaForwardTest, Bf16ReproducesTheFirst32GoldenTokens) {
  auto runner = Load(DType::kBF16, 16);
  ASSERT_NE(runner, nullptr);
  for (const auto& c : hydra::testing::LoadGolden()) {
    SCOPED_TRACE(c.prompt);
    const auto result = hydra::testing::GreedyDecodeBatchOn(
        *runner, kBlockSize, runner->num_blocks(), {c.prompt_ids}, 1 << 20, 1,
        /*max_tokens=*/32);
    const size_t n = std::min<size_t>(32, c.output_ids.size());
    ASSERT_GE(result[0].output_ids.size(), n);
    EXPECT_TRUE(std::equal(c.output_ids.begin(), c.output_ids.begin() + n,
                           result[0].output_ids.begin()));
  }
}

TEST_F(CudaForwardTest, BatchedChunkedPrefillMatchesOneAtATime) {
  auto runner = Load(DType::kF32, 16 * 8);
  ASSERT_NE(runner, nullptr);
  const auto golden = hydra::testing::LoadGolden();
  std::vector<std::vector<int>> prompts;
  for (size_t i = 0; i < std::min<size_t>(golden.size(), 8); ++i) {
    prompts.push_back(golden[i].prompt_ids);
  }
  // Prompts prefilled 3 tokens at a time, decodes mixed into the same steps.
  const auto batched = hydra::testing::GreedyDecodeBatchOn(
      *runner, kBlockSize, runner->num_blocks(), prompts, 3, 7);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched[i].output_ids, golden[i].output_ids) << golden[i].prompt;
  }
  EXPECT_GT(runner->graphs_captured(), 0);
}

TEST_F(CudaForwardTest, GraphReplayEqualsEagerExecution) {
  auto with = Load(DType::kBF16, 16 * 4, /*graphs=*/true);
  auto without = Load(DType::kBF16, 16 * 4, /*graphs=*/false);
  ASSERT_NE(with, nullptr);
  ASSERT_NE(without, nullptr);
  const auto golden = hydra::testing::LoadGolden();
  std::vector<std::vector<int>> prompts = {
      golden[0].prompt_ids, golden[1].prompt_ids, golden[2].prompt_ids};
  const auto a = hydra::testing::GreedyDecodeBatchOn(
      *with, kBlockSize, with->num_blocks(), prompts, 1 << 20, 3, 48);
  const auto b = hydra::testing::GreedyDecodeBatchOn(
      *without, kBlockSize, without->num_blocks(), prompts, 1 << 20, 3, 48);
  // BF16 tolerance: a graph runs padded rows (4 for these 3 sequences), and
  // cuBLAS may pick another kernel for another row count, so a BF16 rounding
  // can differ; a replay bug (stale pointers, wrong padding) is far larger.
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(a[i].output_ids, b[i].output_ids);
    ASSERT_EQ(a[i].logits.size(), b[i].logits.size());
    for (size_t s = 0; s < a[i].logits.size(); ++s) {
      EXPECT_LE(testing::RelativeError(a[i].logits[s], b[i].logits[s]),
                testing::Tolerance<bf16>());
    }
  }
  EXPECT_GT(with->graphs_captured(), 0);
  EXPECT_EQ(without->graphs_captured(), 0);
}

TEST_F(CudaForwardTest, DeviceSamplingReturnsTheArgmaxAndItsLogprob) {
  auto runner = Load(DType::kF32, 16);
  ASSERT_NE(runner, nullptr);
  const auto golden = hydra::testing::LoadGolden();
  worker::StepPlanBuilder builder(kBlockSize);
  std::vector<int> table(16);
  std::iota(table.begin(), table.end(), 0);
  builder.Add(golden[0].prompt_ids, 0, table, true);
  const internal::StepPlan plan = builder.Take();
  std::vector<int> tokens;
  std::vector<float> logprobs;
  const DeviceSamplingRow greedy;
  ASSERT_TRUE(
      runner->StepAndSample(plan, {&greedy, 1}, tokens, &logprobs).ok());
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0], golden[0].output_ids.at(0));
  EXPECT_LT(logprobs[0], 0.0f);
  EXPECT_GT(logprobs[0], -5.0f);
}

TEST_F(CudaForwardTest, RefusesPlansOutsideThePool) {
  auto runner = Load(DType::kF32, 16);
  ASSERT_NE(runner, nullptr);
  worker::StepPlanBuilder builder(kBlockSize);
  builder.Add(std::vector<int>{1, 2}, 0, std::vector<int>{99}, true);
  std::vector<float> logits;
  EXPECT_EQ(runner->Step(builder.Take(), logits).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hydra::gpu
