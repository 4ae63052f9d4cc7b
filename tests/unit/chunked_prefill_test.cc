// The scheduler's step-time budget, fair admission and priority preemption,
// against a simulated machine whose step durations follow a known cost.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/prefill_chunks.h"
#include "scheduler/scheduler.h"
#include "tests/unit/test_sequences.h"

namespace hydra::scheduler {
namespace {

using testing::MakeSequence;

// The simulated machine: 25 ms to stream the weights, 0.5 ms a token,
// attention 1e-4 ms per key read, 0.2 ms a sequence.
double MachineMs(const StepShape& s) {
  return 25.0 + 0.5 * s.tokens + 1e-4 * s.key_reads + 0.2 * s.logits_rows;
}

struct StepRecord {
  std::map<uint64_t, int> tokens;  // id -> tokens computed
  std::vector<uint64_t> sampled;
  double ms = 0;
  double predicted_ms = 0;
  int decodes = 0;
  int num_preempted = 0;
};

// Plays the engine: runs steps on the simulated machine, feeds their
// durations back, and gives sampled sequences a token until they have
// `target_output`.
struct Driver {
  explicit Driver(Scheduler& s) : scheduler(s) {}
  Scheduler& scheduler;
  std::map<uint64_t, int> target_output;

  void Add(uint64_t id, int prompt_len, int output, int priority = 0) {
    scheduler.Add(MakeSequence(id, prompt_len, priority));
    target_output[id] = output;
  }

  StepRecord Run() {
    ScheduledStep step = scheduler.Schedule();
    StepRecord r;
    for (size_t i = 0; i < step.sequences.size(); ++i) {
      r.tokens[step.sequences[i]->id()] = step.num_tokens[i];
    }
    r.decodes = step.decode_tokens;
    r.num_preempted = step.num_preempted;
    r.predicted_ms = step.predicted_ms;
    r.ms = MachineMs(step.shape);
    scheduler.OnStepDone(step);
    scheduler.RecordStepTime(step, r.ms);
    for (Sequence* seq : step.sampled) {
      r.sampled.push_back(seq->id());
      seq->AppendToken(7);
      if (seq->num_output() >= target_output[seq->id()]) {
        scheduler.Finish(seq->id());
      }
    }
    return r;
  }
};

SchedulerConfig Config(double max_step_ms, int max_batched_tokens = 2048) {
  SchedulerConfig c;
  c.max_batched_tokens = max_batched_tokens;
  c.max_running = 64;
  c.max_step_ms = max_step_ms;
  return c;
}

// Four streams decode; a 1,500-token prompt arrives. Once the model has
// seen a few steps, every step with decodes stays within the budget, the
// chunks use most of it, and the decodes run every step.
TEST(ChunkedPrefillTest, ChunksFillTheBudgetFromTheFittedModel) {
  BlockManager blocks(1000, 16);
  Scheduler scheduler(Config(/*max_step_ms=*/100), blocks);
  Driver d(scheduler);
  for (uint64_t id = 1; id <= 4; ++id) d.Add(id, 20, 1000);
  for (int i = 0; i < 10; ++i) d.Run();  // the streams decode
  d.Add(99, 1500, 1);
  int steps = 0, full_steps = 0, chunk_steps = 0;
  while (scheduler.Find(99) != nullptr) {
    const StepRecord r = d.Run();
    ASSERT_LT(++steps, 500);
    EXPECT_EQ(r.decodes, 4) << "a decode was skipped for the prefill";
    if (!r.tokens.contains(99)) continue;
    ++chunk_steps;
    // The first chunks grow by doubling while the model learns; after
    // that the prediction is exact on this machine.
    if (chunk_steps > 4) {
      EXPECT_LE(r.ms, 100.0 + 1e-6) << "step " << steps;
      EXPECT_NEAR(r.predicted_ms, r.ms, 1.0);
      if (r.ms >= 0.95 * 100.0) ++full_steps;
    }
  }
  // All but the last chunk fill the budget.
  EXPECT_GE(full_steps, chunk_steps - 4 - 1);
  // About (1500 tokens * 0.5 ms + attention) / (100 - 27 ms) steps.
  EXPECT_LE(chunk_steps, 20);
}

TEST(ChunkedPrefillTest, WithNothingDecodingPrefillTakesTheWholeTokenBudget) {
  BlockManager blocks(1000, 16);
  Scheduler scheduler(Config(/*max_step_ms=*/50, /*max_batched_tokens=*/512),
                      blocks);
  Driver d(scheduler);
  d.Add(1, 1500, 1);
  const StepRecord r = d.Run();
  EXPECT_EQ(r.tokens.at(1), 512);
  EXPECT_GT(r.ms, 50.0);  // over the budget: nobody waits on this step
}

TEST(ChunkedPrefillTest, TwoPromptsPrefillInTheSameStep) {
  BlockManager blocks(1000, 16);
  SchedulerConfig config = Config(0, /*max_batched_tokens=*/256);
  config.max_partial_prefills = 2;
  Scheduler scheduler(config, blocks);
  Driver d(scheduler);
  d.Add(1, 1000, 1);
  d.Add(2, 1000, 1);
  d.Add(3, 1000, 1);
  const StepRecord r = d.Run();
  ASSERT_EQ(r.tokens.size(), 2u) << "max_partial_prefills = 2";
  EXPECT_EQ(r.tokens.at(1), 128);
  EXPECT_EQ(r.tokens.at(2), 128);
  EXPECT_EQ(scheduler.num_prefilling(), 2);
  EXPECT_EQ(scheduler.num_waiting(), 1);
}

// A long prompt is prefilling in chunks; a short one arrives. Its whole
// prompt is computed in the next step: its first token waits for at most
// the chunk that was running when it came.
TEST(ChunkedPrefillTest, ShortPromptIsNotHeldBehindALongOne) {
  for (double budget : {0.0, 100.0}) {
    BlockManager blocks(1000, 16);
    Scheduler scheduler(Config(budget, /*max_batched_tokens=*/256), blocks);
    Driver d(scheduler);
    d.Add(1, 20, 1000);  // a stream, so that the time budget applies
    d.Run();
    d.Add(2, 4000, 1);
    d.Run();
    d.Run();
    ASSERT_GT(scheduler.Find(2)->num_computed(), 0);
    d.Add(3, 40, 5);
    const StepRecord r = d.Run();
    EXPECT_EQ(r.tokens.at(3), 40) << "budget " << budget;
    EXPECT_TRUE(std::count(r.sampled.begin(), r.sampled.end(), 3u));
    EXPECT_GT(r.tokens.at(2), 0) << "the long prompt still moves";
  }
}

// Short prompts keep arriving, one per step, more than the budget can
// take beside the long one; the long prompt still finishes, getting at
// least its guaranteed chunk every step.
TEST(ChunkedPrefillTest, LongPromptIsNeverStarved) {
  BlockManager blocks(4000, 16);
  SchedulerConfig config = Config(/*max_step_ms=*/60);
  config.min_prefill_chunk = 16;
  Scheduler scheduler(config, blocks);
  Driver d(scheduler);
  d.Add(1, 20, 100000);
  for (int i = 0; i < 10; ++i) d.Run();
  d.Add(2, 3000, 1);
  uint64_t next = 100;
  int steps = 0;
  while (scheduler.Find(2) != nullptr) {
    d.Add(next++, 60, 3);
    d.Add(next++, 60, 3);
    StepRecord r = d.Run();
    ASSERT_LT(++steps, 3000 / 16 + 10) << "the long prompt is starved";
    if (scheduler.Find(2) != nullptr) {
      EXPECT_GE(r.tokens[2], 16) << "step " << steps;
    }
  }
}

TEST(ChunkedPrefillTest, HigherPriorityPreemptsAtTheRunningLimit) {
  BlockManager blocks(1000, 16);
  SchedulerConfig config = Config(0);
  config.max_running = 2;
  Scheduler scheduler(config, blocks);
  Driver d(scheduler);
  d.Add(1, 10, 100, /*priority=*/5);
  d.Add(2, 10, 100, /*priority=*/3);
  d.Run();
  ASSERT_EQ(scheduler.num_running(), 2);
  d.Add(3, 10, 100, /*priority=*/0);
  d.Add(4, 10, 100, /*priority=*/3);  // not more important than 2: waits
  const StepRecord r = d.Run();
  EXPECT_EQ(r.num_preempted, 1);
  EXPECT_TRUE(r.tokens.contains(3));
  EXPECT_EQ(scheduler.Find(1)->status(), SequenceStatus::kWaiting);
  EXPECT_EQ(scheduler.Find(1)->preemptions(), 1);
  EXPECT_EQ(scheduler.Find(2)->status(), SequenceStatus::kRunning);
  EXPECT_EQ(scheduler.Find(4)->status(), SequenceStatus::kWaiting);
  EXPECT_EQ(scheduler.preemptions_by_priority().at(5), 1);
  EXPECT_FALSE(scheduler.preemptions_by_priority().contains(3));
  EXPECT_EQ((std::map<int, int>{{3, 1}, {5, 1}}),
            scheduler.waiting_by_priority());
}

TEST(ChunkedPrefillTest, HigherPriorityPreemptsWhenTheKvPoolIsFull) {
  BlockManager blocks(8, 4);  // 32 slots
  Scheduler scheduler(Config(0), blocks);
  Driver d(scheduler);
  d.Add(1, 16, 4, /*priority=*/2);  // 4 blocks, 5 with its output
  d.Add(2, 16, 4, /*priority=*/1);
  d.Run();
  ASSERT_EQ(blocks.num_free() + blocks.num_cached(), 0);
  d.Add(3, 12, 3, /*priority=*/0);
  const StepRecord r = d.Run();
  EXPECT_GE(r.num_preempted, 1);
  EXPECT_TRUE(r.tokens.contains(3));
  EXPECT_EQ(scheduler.Find(1)->status(), SequenceStatus::kWaiting);
  EXPECT_EQ(scheduler.preemptions_by_priority().at(2), 1);
  // Everyone finishes and no block leaks.
  for (int i = 0; i < 2000 && scheduler.has_work(); ++i) d.Run();
  EXPECT_FALSE(scheduler.has_work());
  EXPECT_EQ(blocks.num_used(), 0);
}

TEST(ChunkedPrefillTest, EqualPriorityDoesNotPreempt) {
  BlockManager blocks(1000, 16);
  SchedulerConfig config = Config(0);
  config.max_running = 1;
  Scheduler scheduler(config, blocks);
  Driver d(scheduler);
  d.Add(1, 10, 5);
  d.Run();
  d.Add(2, 10, 5);
  const StepRecord r = d.Run();
  EXPECT_EQ(r.num_preempted, 0);
  EXPECT_FALSE(r.tokens.contains(2));
}

// SizePrefillChunks on its own: the shares, the order and the floors.
TEST(PrefillChunksTest, SharesThenOrderThenFloors) {
  StepCostModel model;
  // A machine of 1 ms a token, nothing else.
  for (int i = 1; i <= 20; ++i) model.Observe(ChunkShape(0, i * 10), i * 10.0);
  ASSERT_NEAR(model.coefficients().per_token_ms, 1.0, 1e-6);
  const std::vector<PrefillCandidate> c = {
      {0, 30, false, 0}, {500, 1000, true, 0}, {0, 1000, false, 1}};
  ChunkLimits limits;
  limits.max_tokens = 1000;
  limits.time_left_ms = 100;
  limits.min_chunk = 8;
  const std::vector<int> n = SizePrefillChunks(c, limits, model);
  EXPECT_EQ(n[0], 30);      // all of it, within its share of 50 ms
  EXPECT_EQ(n[1], 70);      // its share, then what the first left
  EXPECT_EQ(n[2], 0);       // less important, nothing left, not started
  limits.time_left_ms = 0;  // the decodes spent the budget
  const std::vector<int> floors = SizePrefillChunks(c, limits, model);
  EXPECT_EQ(floors, (std::vector<int>{8, 8, 0}));
  limits.max_tokens = 5;  // the token budget is the hard cap
  const std::vector<int> capped = SizePrefillChunks(c, limits, model);
  EXPECT_EQ(capped[0] + capped[1] + capped[2], 5);
}

}  // namespace
}  // namespace hydra::scheduler
