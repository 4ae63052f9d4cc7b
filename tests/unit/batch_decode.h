// Greedy decoding of several prompts through one ModelRunner, all in the same
// steps, with the prompts prefilled in chunks and each sequence's KV blocks
// scattered over the pool. A stand-in for the scheduler, so the forward pass
// can be tested on batching and paging alone.
#ifndef HYDRA_TESTS_UNIT_BATCH_DECODE_H_
#define HYDRA_TESTS_UNIT_BATCH_DECODE_H_

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "worker/model_runner.h"
#include "worker/step_plan_builder.h"

namespace hydra::testing {

struct DecodeResult {
  std::vector<int> output_ids;
  std::vector<std::vector<float>> logits;  // one row per generated token
};

inline int BlocksPerSequence(const worker::ModelRunner& runner) {
  const int bs = runner.kv_cache().shape().block_size;
  return (runner.config().max_position_embeddings + bs - 1) / bs;
}

// Stops a sequence at an end-of-sequence id (not included) or once the token
// predicted at the last position has been emitted (the golden stop rule).
// Any runner (CPU or GPU) over a pool of `num_blocks` blocks of `bs` tokens;
// `max_tokens` (0 = none) stops every sequence after that many outputs.
inline std::vector<DecodeResult> GreedyDecodeBatchOn(
    worker::StepRunner& runner, int bs, int num_blocks,
    const std::vector<std::vector<int>>& prompts, int prefill_chunk,
    uint32_t block_shuffle_seed, int max_tokens = 0) {
  const auto& config = runner.config();
  const int per_seq = (config.max_position_embeddings + bs - 1) / bs;
  const int n = static_cast<int>(prompts.size());
  EXPECT_LE(per_seq * n, num_blocks);

  std::vector<int> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937(block_shuffle_seed));
  std::vector<std::vector<int>> tables(n);
  for (int s = 0; s < n; ++s) {
    tables[s].assign(pool.begin() + s * per_seq,
                     pool.begin() + (s + 1) * per_seq);
  }

  std::vector<DecodeResult> results(n);
  std::vector<std::vector<int>> tokens = prompts;
  std::vector<int> fed(n, 0);
  std::vector<bool> done(n, false);
  worker::StepPlanBuilder builder(bs);
  std::vector<float> logits;
  while (std::find(done.begin(), done.end(), false) != done.end()) {
    std::vector<int> sampling;  // sequences whose logits this step returns
    for (int s = 0; s < n; ++s) {
      if (done[s]) continue;
      const int prompt_len = static_cast<int>(prompts[s].size());
      const int len = fed[s] < prompt_len
                          ? std::min(prefill_chunk, prompt_len - fed[s])
                          : 1;
      const bool completes = fed[s] + len >= prompt_len;
      builder.Add(std::span<const int>(tokens[s]).subspan(fed[s], len), fed[s],
                  tables[s], completes);
      fed[s] += len;
      if (completes) sampling.push_back(s);
    }
    const absl::Status status = runner.Step(builder.Take(), logits);
    EXPECT_TRUE(status.ok()) << status;
    if (!status.ok()) break;
    for (size_t r = 0; r < sampling.size(); ++r) {
      const int s = sampling[r];
      std::span<const float> row(logits.data() + r * config.vocab_size,
                                 config.vocab_size);
      results[s].logits.emplace_back(row.begin(), row.end());
      const int next = engine::Argmax(row);
      const auto& eos = config.eos_token_ids;
      if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
        done[s] = true;
        continue;
      }
      results[s].output_ids.push_back(next);
      tokens[s].push_back(next);
      if (fed[s] >= config.max_position_embeddings) done[s] = true;
      if (max_tokens > 0 &&
          static_cast<int>(results[s].output_ids.size()) >= max_tokens) {
        done[s] = true;
      }
    }
  }
  return results;
}

inline std::vector<DecodeResult> GreedyDecodeBatch(
    worker::ModelRunner& runner, const std::vector<std::vector<int>>& prompts,
    int prefill_chunk, uint32_t block_shuffle_seed) {
  return GreedyDecodeBatchOn(runner, runner.kv_cache().shape().block_size,
                             runner.kv_cache().num_blocks(), prompts,
                             prefill_chunk, block_shuffle_seed);
}

}  // namespace hydra::testing

#endif  // HYDRA_TESTS_UNIT_BATCH_DECODE_H_
