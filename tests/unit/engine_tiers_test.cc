// The engine over KV tiers, on the runner under test (the CPU's; in
// engine_gpu_test, the CUDA runner's device-to-host copies): a prompt whose
// blocks a small pool evicted comes back from host memory or disk with the
// same greedy tokens, and a new engine on the same disk folder serves it
// too, counted in cached_prompt_tokens.
#include <filesystem>
#include <random>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/unit/test_model.h"
#include "worker/model_runner.h"

#ifdef HYDRA_ENGINE_TEST_ON_CUDA
#include "tests/gpu/gpu_test_util.h"
#include "worker/cuda/cuda_runner.h"
#endif

namespace hydra::engine {
namespace {

namespace fs = std::filesystem;
constexpr int kBlockSize = 16;
constexpr int kPoolBlocks = 24;

absl::StatusOr<std::unique_ptr<worker::StepRunner>> LoadRunner(
    const worker::KvTierOptions& tiers) {
#ifdef HYDRA_ENGINE_TEST_ON_CUDA
  gpu::CudaRunnerOptions options;
  options.dtype = gpu::DType::kF32;
  options.block_size = kBlockSize;
  options.num_blocks = kPoolBlocks;
  options.max_tokens = 1024;
  options.kv_tiers = tiers;
  return gpu::CudaRunner::Load(testing::ModelDir(), options);
#else
  worker::RunnerOptions options;
  options.block_size = kBlockSize;
  options.num_blocks = kPoolBlocks;
  options.kv_tiers = tiers;
  return worker::ModelRunner::Load(testing::ModelDir(), options);
#endif
}

std::unique_ptr<Engine> MakeEngine(const worker::KvTierOptions& tiers) {
  auto runner = LoadRunner(tiers);
  EXPECT_TRUE(runner.ok()) << runner.status();
  if (!runner.ok()) return nullptr;
  auto tokenizer =
      model::Tokenizer::Load(testing::ModelDir() / "tokenizer.model");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  EngineConfig config;
  config.block_size = kBlockSize;
  config.num_blocks = kPoolBlocks;
  return std::make_unique<Engine>(config, std::move(*runner),
                                  std::move(*tokenizer));
}

struct Answer {
  std::vector<int> tokens;
  int cached = -1;
};

Answer Ask(Engine& engine, const std::vector<int>& prompt) {
  EngineRequest r;
  r.prompt_ids = prompt;
  r.sampling.temperature = 0.0f;
  r.stopping.max_tokens = 12;
  r.stopping.ignore_eos = true;
  Answer a;
  absl::Notification done;
  auto submitted = engine.Submit(std::move(r), [&](EngineOutput out) {
    a.tokens.insert(a.tokens.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.finished) {
      a.cached = out.usage.cached_prompt_tokens;
      done.Notify();
    }
  });
  EXPECT_TRUE(submitted.ok()) << submitted.status();
  if (submitted.ok()) {
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(120)));
  }
  return a;
}

std::vector<int> RandomPrompt(std::mt19937& rng, int n) {
  std::vector<int> ids(n);
  for (int& id : ids) id = 3 + static_cast<int>(rng() % 30000);
  return ids;
}

class EngineTiersTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
#ifdef HYDRA_ENGINE_TEST_ON_CUDA
    HYDRA_REQUIRE_GPU();
#endif
    HYDRA_REQUIRE_MODEL();
    dir_ = fs::path(::testing::TempDir()) / "engine_tiers_test";
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  worker::KvTierOptions Tiers() const {
    if (GetParam()) return {size_t(64) << 20, "", 0};
    return {0, dir_.string(), size_t(64) << 20};
  }
  fs::path dir_;
};

TEST_P(EngineTiersTest, EvictedPrefixComesBackWithTheSameTokens) {
  std::mt19937 rng(5);
  const std::vector<int> doc = RandomPrompt(rng, 150);  // 9 full blocks
  Answer first, back;
  {
    auto engine = MakeEngine(Tiers());
    ASSERT_NE(engine, nullptr);
    ASSERT_NE(engine->stats().kv_tiers.count(GetParam() ? "host" : "disk"), 0u);
    first = Ask(*engine, doc);
    EXPECT_EQ(first.cached, 0);
    // Two other prompts of 10 blocks each: the document leaves the pool.
    Ask(*engine, RandomPrompt(rng, 160));
    Ask(*engine, RandomPrompt(rng, 160));
    back = Ask(*engine, doc);
    EXPECT_EQ(back.tokens, first.tokens);
    EXPECT_EQ(back.cached, 144);
    const EngineStats s = engine->stats();
    const KvTierStats& tier = s.kv_tiers.at(GetParam() ? "host" : "disk");
    // From the tier, or the part of it still in the pool; nothing random.
    EXPECT_GT(tier.hits, 0);
    EXPECT_EQ(tier.hits + s.prefix_hits, 144);
    EXPECT_EQ(tier.load_failures, 0);
    EXPECT_GT(tier.stored_bytes, 0);
  }
  if (GetParam()) return;  // host memory ends with the engine
  auto restarted = MakeEngine(Tiers());
  ASSERT_NE(restarted, nullptr);
  const Answer again = Ask(*restarted, doc);
  EXPECT_EQ(again.tokens, first.tokens);
  EXPECT_EQ(again.cached, 144);
}

INSTANTIATE_TEST_SUITE_P(Tiers, EngineTiersTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Host" : "Disk";
                         });

}  // namespace
}  // namespace hydra::engine
