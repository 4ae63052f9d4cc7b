#include "scheduler/scheduler.h"

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/test_sequences.h"

namespace hydra::scheduler {
namespace {

using testing::MakeSequence;

// What a step did, kept by value: finished sequences are gone afterwards.
struct StepSummary {
  std::vector<uint64_t> ids;
  std::vector<int> num_tokens;
  int plan_tokens = 0;
  int num_preempted = 0;
};

// Plays the engine: after each step, sampled sequences get a token and
// finish once they have `target_output` of them.
struct Driver {
  explicit Driver(Scheduler& s) : scheduler(s) {}

  Scheduler& scheduler;
  std::map<uint64_t, int> target_output;
  std::vector<uint64_t> finished;

  StepSummary RunStep() {
    ScheduledStep step = scheduler.Schedule();
    StepSummary summary;
    for (const Sequence* seq : step.sequences) summary.ids.push_back(seq->id());
    summary.num_tokens = step.num_tokens;
    summary.plan_tokens = step.plan.token_ids_size();
    summary.num_preempted = step.num_preempted;
    scheduler.OnStepDone(step);
    for (Sequence* seq : step.sampled) {
      seq->AppendToken(7);
      if (seq->num_output() >= target_output[seq->id()]) {
        finished.push_back(seq->id());
        scheduler.Finish(seq->id());
      }
    }
    return summary;
  }
};

TEST(SchedulerTest, BudgetAndSequenceLimitsHoldEveryStep) {
  BlockManager blocks(200, 16);
  Scheduler scheduler({/*max_batched_tokens=*/64, /*max_running=*/5}, blocks);
  Driver driver(scheduler);
  std::mt19937 rng(3);
  for (uint64_t id = 1; id <= 40; ++id) {
    scheduler.Add(MakeSequence(id, 1 + rng() % 150));
    driver.target_output[id] = 1 + rng() % 40;
  }
  int steps = 0;
  while (scheduler.has_work()) {
    const StepSummary step = driver.RunStep();
    ASSERT_LE(step.plan_tokens, 64);
    ASSERT_LE(scheduler.num_running(), 5);
    ASSERT_LE(static_cast<int>(step.ids.size()), 5);
    ASSERT_LT(++steps, 10000);
  }
  EXPECT_EQ(driver.finished.size(), 40u);
  EXPECT_EQ(blocks.num_used(), 0);
}

TEST(SchedulerTest, LongPromptIsPrefilledInChunksWithoutStallingDecodes) {
  BlockManager blocks(100, 16);
  Scheduler scheduler({/*max_batched_tokens=*/32, /*max_running=*/8}, blocks);
  Driver driver(scheduler);
  for (uint64_t id = 1; id <= 4; ++id) {
    scheduler.Add(MakeSequence(id, 5));
    driver.target_output[id] = 50;
  }
  driver.RunStep();  // the four short prompts prefill together
  ASSERT_EQ(scheduler.num_running(), 4);
  scheduler.Add(MakeSequence(99, 200));  // longer than the budget
  driver.target_output[99] = 1;
  int chunks = 0;
  while (scheduler.Find(99) != nullptr &&
         scheduler.Find(99)->num_output() == 0) {
    const StepSummary step = driver.RunStep();
    // Every decoding sequence still runs every step.
    int decodes = 0;
    for (size_t i = 0; i < step.ids.size(); ++i) {
      if (step.ids[i] != 99) {
        ++decodes;
        EXPECT_EQ(step.num_tokens[i], 1);
      } else {
        ++chunks;
        EXPECT_LE(step.num_tokens[i], 32 - 4);
      }
    }
    EXPECT_EQ(decodes, 4);
    if (scheduler.Find(99) == nullptr) break;
  }
  EXPECT_GE(chunks, 200 / 28);
}

TEST(SchedulerTest, PreemptsLowestPriorityLatestArrivalWhenBlocksRunOut) {
  BlockManager blocks(6, 4);  // 24 slots
  Scheduler scheduler({/*max_batched_tokens=*/64, /*max_running=*/8}, blocks);
  Driver driver(scheduler);
  scheduler.Add(MakeSequence(1, 4, /*priority=*/0));
  scheduler.Add(MakeSequence(2, 4, /*priority=*/1));  // least important
  scheduler.Add(MakeSequence(3, 4, /*priority=*/0));
  for (uint64_t id : {1, 2, 3}) driver.target_output[id] = 10;
  driver.RunStep();
  ASSERT_EQ(scheduler.num_running(), 3);
  // Each needs a second block for its 5th token: 6 blocks, 3 held, 3 free.
  // Then a third block at token 9: not enough for all three.
  uint64_t first_victim = 0;
  while (scheduler.has_work()) {
    const StepSummary step = driver.RunStep();
    if (step.num_preempted > 0 && first_victim == 0) {
      for (uint64_t id : {1, 2, 3}) {
        const Sequence* seq = scheduler.Find(id);
        if (seq != nullptr && seq->preemptions() > 0) first_victim = id;
      }
    }
  }
  EXPECT_EQ(first_victim, 2u);
  EXPECT_GT(scheduler.preemptions(), 0);
  EXPECT_EQ(driver.finished.size(), 3u);
  EXPECT_EQ(blocks.num_used(), 0);
}

TEST(SchedulerTest, AdmitsInPriorityOrder) {
  BlockManager blocks(100, 16);
  Scheduler scheduler({/*max_batched_tokens=*/8, /*max_running=*/8}, blocks);
  scheduler.Add(MakeSequence(1, 8, /*priority=*/5));
  scheduler.Add(MakeSequence(2, 8, /*priority=*/0));
  const ScheduledStep step = scheduler.Schedule();
  ASSERT_EQ(step.sequences.size(), 1u);
  EXPECT_EQ(step.sequences[0]->id(), 2u);
}

TEST(SchedulerTest, PlanAddressesTheSequencesBlocks) {
  BlockManager blocks(10, 4);
  Scheduler scheduler({64, 8}, blocks);
  scheduler.Add(MakeSequence(1, 6));
  const ScheduledStep step = scheduler.Schedule();
  const auto& plan = step.plan;
  ASSERT_EQ(plan.token_ids_size(), 6);
  ASSERT_EQ(plan.sequences_size(), 1);
  const auto& table = plan.sequences(0).block_table();
  ASSERT_EQ(table.size(), 2);
  for (int p = 0; p < 6; ++p) {
    EXPECT_EQ(plan.positions(p), p);
    EXPECT_EQ(plan.slot_mapping(p), table[p / 4] * 4 + p % 4);
  }
  ASSERT_EQ(plan.logits_rows_size(), 1);
  EXPECT_EQ(plan.logits_rows(0), 5);
}

}  // namespace
}  // namespace hydra::scheduler
