// Prompt-lookup speculative decoding on the scheduler's side: the n-gram
// proposer, the draft policy, the flags' checks, and how drafts enter a step
// and leave the KV pool when rejected.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/block_manager.h"
#include "scheduler/draft_policy.h"
#include "scheduler/ngram_proposer.h"
#include "scheduler/scheduler.h"
#include "scheduler/speculative_config.h"
#include "tests/unit/test_sequences.h"

namespace hydra::scheduler {
namespace {

using V = std::vector<int>;

TEST(NgramProposerTest, CopiesWhatFollowedTheLastOccurrence) {
  // ... 7 8 9 [10 11 12 13] ... 7 8 9
  const V tokens = {1, 7, 8, 9, 10, 11, 12, 13, 2, 7, 8, 9};
  EXPECT_EQ(ProposeNgramDrafts(tokens, 3, 4), (V{10, 11, 12, 13}));
}

TEST(NgramProposerTest, NothingWithoutAMatch) {
  EXPECT_TRUE(ProposeNgramDrafts(V{1, 2, 3, 4, 5, 6}, 2, 4).empty());
  // Too short to hold the suffix and an earlier occurrence.
  EXPECT_TRUE(ProposeNgramDrafts(V{5, 5, 5}, 3, 4).empty());
  EXPECT_TRUE(ProposeNgramDrafts(V{}, 1, 4).empty());
}

TEST(NgramProposerTest, TakesTheMostRecentMatch) {
  // "4 5" occurs twice before the end: followed by 6 and, later, by 9.
  const V tokens = {4, 5, 6, 6, 4, 5, 9, 9, 4, 5};
  EXPECT_EQ(ProposeNgramDrafts(tokens, 2, 2), (V{9, 9}));
}

TEST(NgramProposerTest, CapsAtKAndAtTheEndOfTheSequence) {
  const V tokens = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2};
  EXPECT_EQ(ProposeNgramDrafts(tokens, 2, 3), (V{3, 4, 5}));
  EXPECT_EQ(ProposeNgramDrafts(tokens, 2, 16), (V{3, 4, 5, 6, 7, 8, 1, 2}));
  // A run: the occurrence overlapping the suffix leaves one token to copy.
  EXPECT_EQ(ProposeNgramDrafts(V{3, 3, 3, 3}, 2, 4), (V{3}));
}

TEST(NgramProposerTest, MatchesExactlyTheLastNTokens) {
  // The last 1 token (9) matches at index 1; the last 2 (8 9) nowhere.
  const V tokens = {0, 9, 4, 8, 2, 8, 9};
  EXPECT_EQ(ProposeNgramDrafts(tokens, 1, 2), (V{4, 8}));
  EXPECT_TRUE(ProposeNgramDrafts(tokens, 2, 2).empty());
  // The last 3 (2 8 9) nowhere, though 8 9 is a prefix of nothing either.
  EXPECT_TRUE(ProposeNgramDrafts(tokens, 3, 2).empty());
}

TEST(DraftPolicyTest, LengthFollowsTheAcceptedRuns) {
  DraftPolicy policy;
  EXPECT_EQ(policy.DraftLength(4), 4);  // the first may be as long as asked
  policy.Record(4, 1);                  // a run of 1, then a rejection
  EXPECT_EQ(policy.DraftLength(4), 2);
  policy.Record(2, 2);  // all accepted: twice as long
  EXPECT_EQ(policy.DraftLength(4), 4);
  policy.Record(3, 3);  // (the match had only 3 to copy)
  EXPECT_EQ(policy.DraftLength(8), 6);
  EXPECT_EQ(policy.DraftLength(4), 4);  // never beyond what is asked
  policy.Record(4, 0);
  EXPECT_EQ(policy.DraftLength(4), 1);
  EXPECT_EQ(policy.proposed(), 13);
  EXPECT_EQ(policy.accepted(), 6);
}

TEST(DraftPolicyTest, PausesForLongerAfterEachBadWindowAndResets) {
  DraftPolicy policy;
  auto window = [&](int accepted) {
    for (int i = 0; i < DraftPolicy::kWindow; ++i) {
      ASSERT_GT(policy.DraftLength(4), 0);
      policy.Record(4, accepted);
    }
  };
  auto paused_steps = [&] {
    int n = 0;
    while (policy.DraftLength(4) == 0) ++n;
    return n;
  };
  window(0);
  EXPECT_EQ(paused_steps(), 1);
  policy.Record(4, 0);
  for (int i = 1; i < DraftPolicy::kWindow; ++i) policy.Record(4, 0);
  EXPECT_EQ(paused_steps(), 2);
  // A good window resets the pause.
  window(3);
  EXPECT_GT(policy.DraftLength(4), 0);
  window(0);
  EXPECT_EQ(paused_steps(), 1);
  // The pause is capped.
  for (int w = 0; w < 12; ++w) {
    for (int i = 0; i < DraftPolicy::kWindow; ++i) policy.Record(4, 0);
    EXPECT_LE(paused_steps(), DraftPolicy::kMaxPause);
  }
  EXPECT_EQ(policy.accepted(), 3 * DraftPolicy::kWindow);
}

TEST(DraftPolicyTest, AWindowBelowTheBreakEvenIsBad) {
  DraftPolicy policy;
  for (int i = 0; i < DraftPolicy::kWindow; ++i) {
    ASSERT_GT(policy.DraftLength(4), 0);
    policy.Record(2, 1, /*break_even=*/0.9);  // 50 %: fine alone, not here
  }
  EXPECT_EQ(policy.DraftLength(4), 0);
}

TEST(DraftPolicyTest, InCostlyStepsOnlyACopyingSequenceProposes) {
  DraftPolicy policy;
  constexpr double kCostly = 0.9;
  EXPECT_EQ(policy.DraftLength(4, kCostly), 1);  // nothing known: a probe
  policy.Record(1, 1, kCostly);
  EXPECT_EQ(policy.DraftLength(4, kCostly), 2);  // copying: go on, longer
  policy.Record(2, 2, kCostly);
  EXPECT_EQ(policy.DraftLength(4, kCostly), 4);
  policy.Record(4, 2, kCostly);
  EXPECT_EQ(policy.DraftLength(4, 0.1), 3);  // cheap steps: as before
  int skipped = 0;
  int probe = 0;
  while ((probe = policy.DraftLength(4, kCostly)) == 0) ++skipped;
  EXPECT_EQ(skipped, DraftPolicy::kMaxPause - 1);  // then one probe
  EXPECT_EQ(probe, 1);
}

TEST(SpeculativeConfigTest, FlagsAreCheckedAndNamedInErrors) {
  auto ok = ParseSpeculativeConfig("ngram", 4, 3);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->num_tokens, 4);
  EXPECT_EQ(ok->ngram, 3);
  auto off = ParseSpeculativeConfig("none", 4, 3);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->num_tokens, 0);
  auto mode = ParseSpeculativeConfig("eagle", 4, 3);
  EXPECT_EQ(mode.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(
      mode.status().message().find("--speculative: must be none or ngram"),
      std::string::npos)
      << mode.status();
  auto k = ParseSpeculativeConfig("ngram", 17, 3);
  EXPECT_NE(k.status().message().find("--spec_tokens: must be in [1, 16]"),
            std::string::npos)
      << k.status();
  EXPECT_FALSE(ParseSpeculativeConfig("ngram", 0, 3).ok());
  auto n = ParseSpeculativeConfig("ngram", 4, 9);
  EXPECT_NE(n.status().message().find("--spec_ngram: must be in [1, 8]"),
            std::string::npos)
      << n.status();
  EXPECT_TRUE(CheckSpeculativeConfig({}).ok());
  EXPECT_FALSE(CheckSpeculativeConfig({/*num_tokens=*/-1, 3}).ok());
}

// A prompt that repeats one sentence: prompt lookup always finds drafts.
std::unique_ptr<Sequence> Repetitive(uint64_t id, int len) {
  std::vector<int> prompt;
  for (int i = 0; i < len; ++i) prompt.push_back(100 + i % 5);
  return std::make_unique<Sequence>(id, std::move(prompt), 0);
}

SchedulerConfig Speculative(int max_batched_tokens, int k = 4) {
  SchedulerConfig config;
  config.max_batched_tokens = max_batched_tokens;
  config.speculative.num_tokens = k;
  config.speculative.ngram = 3;
  return config;
}

// Prefills `seq` and gives it its first token: it decodes from then on.
void Prefill(Scheduler& scheduler, Sequence* seq, int token) {
  ScheduledStep step = scheduler.Schedule();
  ASSERT_EQ(step.sampled.size(), 1u);
  ASSERT_TRUE(step.drafts[0].empty());
  scheduler.OnStepDone(step);
  seq->AppendToken(token);
}

TEST(SpeculativeSchedulingTest, DecodeCarriesDraftsWithALogitsRowEach) {
  BlockManager blocks(32, 4);
  Scheduler scheduler(Speculative(64), blocks);
  Sequence* seq = scheduler.Add(Repetitive(1, 13));  // ... 100 101 102
  Prefill(scheduler, seq, 103);                      // ... 101 102 103
  ScheduledStep step = scheduler.Schedule();
  ASSERT_EQ(step.sampled.size(), 1u);
  EXPECT_EQ(step.drafts[0], (V{104, 100, 101, 102}));
  ASSERT_EQ(step.plan.sequences_size(), 1);
  EXPECT_EQ(step.plan.sequences(0).query_len(), 5);
  EXPECT_EQ(step.plan.sequences(0).context_len(), 18);
  EXPECT_EQ(V(step.plan.token_ids().begin(), step.plan.token_ids().end()),
            (V{103, 104, 100, 101, 102}));
  EXPECT_EQ(V(step.plan.logits_rows().begin(), step.plan.logits_rows().end()),
            (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(step.decode_tokens, 5);
  EXPECT_EQ(step.draft_tokens, 4);
  EXPECT_EQ(step.shape.tokens, 5);
  EXPECT_EQ(step.shape.key_reads, KeyReads(13, 5));
}

TEST(SpeculativeSchedulingTest, RejectedDraftsReleaseTheirBlocksUncached) {
  BlockManager blocks(32, 4);
  Scheduler scheduler(Speculative(64), blocks);
  Sequence* seq = scheduler.Add(Repetitive(1, 13));
  Prefill(scheduler, seq, 103);  // 14 tokens, 13 computed, 4 blocks
  ScheduledStep step = scheduler.Schedule();
  ASSERT_EQ(step.drafts[0].size(), 4u);
  // Blocks for 18 tokens, drafts included.
  EXPECT_EQ(seq->block_table().size(), 5u);
  scheduler.OnStepDone(step);
  // Only the real token is computed: block 3 (positions 12..15) has K/V in
  // every slot, two of them drafts, and is not registered.
  const std::vector<const Sequence*> live = {seq};
  EXPECT_EQ(seq->num_computed(), 14);
  EXPECT_EQ(seq->block_hashes().size(), 3u);
  ASSERT_TRUE(blocks.CheckInvariants(live).ok());
  // The first draft is rejected: row 0 sampled 7, not 104.
  seq->AppendToken(7);
  scheduler.AcceptDrafts(*seq, 4, 0);
  EXPECT_EQ(seq->num_computed(), 14);
  EXPECT_EQ(seq->block_table().size(), 4u);  // what 14 tokens need
  EXPECT_EQ(blocks.num_used(), 4);
  EXPECT_TRUE(blocks.CheckInvariants(live).ok())
      << blocks.CheckInvariants(live);
  scheduler.Finish(1);
  EXPECT_EQ(blocks.num_used(), 0);
  EXPECT_TRUE(blocks.CheckInvariants({}).ok());
}

TEST(SpeculativeSchedulingTest, AcceptedDraftsBecomeComputedAndCached) {
  BlockManager blocks(32, 4);
  Scheduler scheduler(Speculative(64), blocks);
  Sequence* seq = scheduler.Add(Repetitive(1, 13));
  Prefill(scheduler, seq, 103);
  ScheduledStep step = scheduler.Schedule();
  ASSERT_EQ(step.drafts[0], (V{104, 100, 101, 102}));
  scheduler.OnStepDone(step);
  // Rows 0..2 sampled the drafts 104, 100, 101; row 3 sampled 9, not 102.
  for (int t : {104, 100, 101, 9}) seq->AppendToken(t);
  scheduler.AcceptDrafts(*seq, 4, 3);
  EXPECT_EQ(seq->num_tokens(), 18);
  EXPECT_EQ(seq->num_computed(), 17);
  EXPECT_EQ(seq->block_hashes().size(), 4u);  // tokens 0..15
  EXPECT_EQ(seq->block_table().size(), 5u);   // 17 tokens
  EXPECT_EQ(seq->draft_policy().accepted(), 3);
  const std::vector<const Sequence*> live = {seq};
  EXPECT_TRUE(blocks.CheckInvariants(live).ok())
      << blocks.CheckInvariants(live);
  // The next decode starts at the corrected token.
  ScheduledStep next = scheduler.Schedule();
  EXPECT_EQ(next.plan.token_ids(0), 9);
  EXPECT_EQ(next.plan.positions(0), 17);
}

TEST(SpeculativeSchedulingTest, DraftsNeverCostADecodeItsBudget) {
  BlockManager blocks(64, 4);
  // Three decodes in a budget of 5: two tokens are left for drafts. With
  // ngram 1, a sequence ending in 100 always finds drafts (101 102 103 100).
  SchedulerConfig config = Speculative(/*max_batched_tokens=*/5);
  config.speculative.ngram = 1;
  Scheduler scheduler(config, blocks);
  std::vector<Sequence*> seqs;
  for (uint64_t id = 1; id <= 3; ++id) {
    seqs.push_back(scheduler.Add(Repetitive(id, 4)));
  }
  auto all_decoding = [&] {
    for (Sequence* seq : seqs) {
      if (!seq->decoding()) return false;
    }
    return true;
  };
  for (int s = 0; s < 10 && !all_decoding(); ++s) {
    ScheduledStep step = scheduler.Schedule();
    scheduler.OnStepDone(step);
    for (size_t i = 0; i < step.sampled.size(); ++i) {
      step.sampled[i]->AppendToken(100);  // rejects any draft (101 first)
      if (!step.drafts[i].empty()) {
        scheduler.AcceptDrafts(*step.sampled[i],
                               static_cast<int>(step.drafts[i].size()), 0);
      }
    }
  }
  ASSERT_TRUE(all_decoding());
  ScheduledStep step = scheduler.Schedule();
  EXPECT_EQ(step.sampled.size(), 3u);
  EXPECT_EQ(step.plan.token_ids_size(), 5);
  EXPECT_EQ(step.draft_tokens, 2);
  EXPECT_EQ(step.num_preempted, 0);
}

TEST(SpeculativeSchedulingTest, DraftsAreDroppedWhenBlocksAreShort) {
  // Two sequences of 15 tokens in blocks of 4: 4 blocks each, 8 of 9 used.
  BlockManager blocks(9, 4, /*enable_prefix_cache=*/false);
  Scheduler scheduler(Speculative(64), blocks);
  Sequence* a = scheduler.Add(Repetitive(1, 14));
  Sequence* b = scheduler.Add(Repetitive(2, 14));
  ScheduledStep prefill = scheduler.Schedule();
  ASSERT_EQ(prefill.sampled.size(), 2u);
  scheduler.OnStepDone(prefill);
  a->AppendToken(104);
  b->AppendToken(104);
  // Each decode (position 14) fits its 4th block. a's 4 drafts would need
  // the one spare block, which a decode still to come (b's) may need: a
  // gets the 1 draft that fits its own block (position 15). b, the last
  // decode, may take the spare block for its drafts.
  ScheduledStep step = scheduler.Schedule();
  EXPECT_EQ(step.num_preempted, 0);
  ASSERT_EQ(step.sampled.size(), 2u);
  EXPECT_EQ(step.drafts[0], (V{100}));
  EXPECT_EQ(step.drafts[1], (V{100, 101, 102, 103}));
  EXPECT_EQ(a->block_table().size(), 4u);
  EXPECT_EQ(b->block_table().size(), 5u);
  EXPECT_EQ(blocks.num_used(), 9);
}

TEST(SpeculativeSchedulingTest, DraftsStopAtTheSequencesTokenLimit) {
  BlockManager blocks(32, 4);
  Scheduler scheduler(Speculative(64), blocks);
  Sequence* seq = scheduler.Add(Repetitive(1, 13));
  seq->set_token_limit(16);  // two more tokens at most after the prefill's
  Prefill(scheduler, seq, 103);
  ScheduledStep step = scheduler.Schedule();
  // 14 tokens now: a draft and the token sampled after it make 16.
  EXPECT_EQ(step.drafts[0], (V{104}));
}

TEST(SpeculativeSchedulingTest, BreakEvenComesFromTheStepCostModel) {
  BlockManager blocks(64, 16);
  Scheduler scheduler(Speculative(64), blocks);
  std::vector<std::unique_ptr<Sequence>> owned;
  std::vector<Sequence*> decodes;
  for (uint64_t id = 1; id <= 8; ++id) {
    owned.push_back(Repetitive(id, 10));
    decodes.push_back(owned.back().get());
  }
  EXPECT_EQ(scheduler.DraftBreakEven(decodes), 0);  // nothing observed yet
  // A step that costs its tokens and nothing else (a CPU on a small model):
  // a draft costs what a decode's share of the step saves.
  auto observe = [&](double intercept_ms, double token_ms) {
    for (int i = 1; i <= 40; ++i) {
      ScheduledStep step;
      step.sequences.push_back(decodes[0]);  // not empty
      step.shape = {i, 0, 1 + i % 3};
      scheduler.RecordStepTime(step, intercept_ms + token_ms * i);
    }
  };
  observe(0, 0.5);
  EXPECT_NEAR(scheduler.DraftBreakEven(decodes), 1.0, 0.05);
  // A step that costs mostly its weights' reads (a GPU): drafts are cheap.
  Scheduler gpu_like(Speculative(64), blocks);
  for (int r = 0; r < 3; ++r) {  // forget the first fit quickly
    for (int i = 1; i <= 40; ++i) {
      ScheduledStep step;
      step.sequences.push_back(decodes[0]);
      step.shape = {i, 0, 1 + i % 3};
      gpu_like.RecordStepTime(step, 10 + 0.01 * i);
    }
  }
  EXPECT_LT(gpu_like.DraftBreakEven(std::span(decodes).first(1)), 0.01);
  EXPECT_LT(gpu_like.DraftBreakEven(decodes), 0.05);
}

}  // namespace
}  // namespace hydra::scheduler
