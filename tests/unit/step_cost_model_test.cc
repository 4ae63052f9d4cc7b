#include "scheduler/step_cost_model.h"

#include <random>

#include "gtest/gtest.h"

namespace hydra::scheduler {
namespace {

// A machine whose steps cost exactly this (milliseconds).
double TrueCost(const StepShape& s, double slowdown = 1.0) {
  return slowdown *
         (20.0 + 0.8 * s.tokens + 2e-4 * s.key_reads + 0.3 * s.logits_rows);
}

StepShape RandomStep(std::mt19937& rng) {
  // Mixed steps: a few decodes and sometimes a prefill chunk.
  const int decodes = 1 + rng() % 16;
  StepShape s;
  for (int i = 0; i < decodes; ++i) s += ChunkShape(rng() % 2000, 1);
  if (rng() % 2 == 0) s += ChunkShape(rng() % 4000, 1 + rng() % 512);
  return s;
}

TEST(StepCostModelTest, RecoversTheCoefficientsOfANoiselessMachine) {
  StepCostModel model;
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const StepShape s = RandomStep(rng);
    model.Observe(s, TrueCost(s));
  }
  const auto& k = model.coefficients();
  EXPECT_NEAR(k.intercept_ms, 20.0, 0.05);
  EXPECT_NEAR(k.per_token_ms, 0.8, 1e-3);
  EXPECT_NEAR(k.per_key_read_ms, 2e-4, 1e-6);
  EXPECT_NEAR(k.per_logits_row_ms, 0.3, 0.01);
  const StepShape big = ChunkShape(30000, 2048);  // far beyond the data
  EXPECT_NEAR(model.PredictMs(big), TrueCost(big), 0.01 * TrueCost(big));
}

TEST(StepCostModelTest, FitsWithNoisyDurations) {
  StepCostModel model;
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(1.0, 0.05);
  for (int i = 0; i < 400; ++i) {
    const StepShape s = RandomStep(rng);
    model.Observe(s, TrueCost(s) * noise(rng));
  }
  for (int i = 0; i < 20; ++i) {
    const StepShape s = RandomStep(rng);
    EXPECT_NEAR(model.PredictMs(s), TrueCost(s), 0.1 * TrueCost(s));
  }
}

// Pure decode steps have tokens == logits rows and key reads tied to them: the
// terms cannot be told apart. The fit must still reproduce the data, with
// no negative coefficient that would make a larger step look cheaper.
TEST(StepCostModelTest, CollinearDataGiveNonNegativeCoefficients) {
  StepCostModel model;
  for (int i = 0; i < 100; ++i) {
    const int n = 1 + i % 8;
    StepShape s;
    for (int j = 0; j < n; ++j) s += ChunkShape(100, 1);
    model.Observe(s, 30.0 + 1.5 * n);
  }
  const auto& k = model.coefficients();
  EXPECT_GE(k.intercept_ms, 0);
  EXPECT_GE(k.per_token_ms, 0);
  EXPECT_GE(k.per_key_read_ms, 0);
  EXPECT_GE(k.per_logits_row_ms, 0);
  StepShape four;
  for (int j = 0; j < 4; ++j) four += ChunkShape(100, 1);
  EXPECT_NEAR(model.PredictMs(four), 36.0, 0.1);
  EXPECT_EQ(model.max_observed_tokens(), 8);
}

TEST(StepCostModelTest, FollowsAMachineThatSlowsDown) {
  StepCostModel model(/*forgetting=*/0.95);
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    const StepShape s = RandomStep(rng);
    model.Observe(s, TrueCost(s));
  }
  for (int i = 0; i < 200; ++i) {
    const StepShape s = RandomStep(rng);
    model.Observe(s, TrueCost(s, /*slowdown=*/2.0));
  }
  const StepShape probe = ChunkShape(1000, 256);
  EXPECT_NEAR(model.PredictMs(probe), TrueCost(probe, 2.0),
              0.02 * TrueCost(probe, 2.0));
}

TEST(StepCostModelTest, IgnoresNonFiniteDurations) {
  StepCostModel model;
  model.Observe(ChunkShape(0, 10), std::nan(""));
  model.Observe(ChunkShape(0, 10), -1.0);
  EXPECT_EQ(model.observations(), 0);
  EXPECT_EQ(model.PredictMs(ChunkShape(0, 10)), 0.0);
}

}  // namespace
}  // namespace hydra::scheduler
