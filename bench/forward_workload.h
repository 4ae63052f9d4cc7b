// Synthetic forward-pass workloads straight on a ModelRunner (no scheduler):
// batches of random-token sequences with fixed block tables. The runner's
// KV cache must hold `batch` sequences of `max_context` tokens (default: the
// model's full context).
#ifndef HYDRA_BENCH_FORWARD_WORKLOAD_H_
#define HYDRA_BENCH_FORWARD_WORKLOAD_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "worker/model_runner.h"
#include "worker/step_plan_builder.h"

namespace hydra::bench {

class ForwardWorkload {
 public:
  static constexpr int kBlockSize = 16;
  using Clock = std::chrono::steady_clock;

  explicit ForwardWorkload(worker::ModelRunner& runner, int max_context = 0)
      : runner_(runner), rng_(7) {
    const int context =
        max_context > 0 ? max_context : runner.config().max_position_embeddings;
    per_seq_ = (context + kBlockSize - 1) / kBlockSize;
  }

  // Aggregate decode tokens/s for `batch` sequences whose contexts start at
  // `context` tokens, over `steps` decode steps.
  double Decode(int batch, int context, int steps) {
    Prefill(batch, context);
    collective_seconds_ = 0;
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      for (int b = 0; b < batch; ++b) {
        const int token = RandomToken();
        builder_.Add(std::span<const int>(&token, 1), context + s, Table(b),
                     true);
      }
      Run();
    }
    return double(batch) * steps / Seconds(start);
  }

  // Prefill tokens/s: `batch` prompts of `length` tokens in one step.
  double PrefillRate(int batch, int length) {
    const auto start = Clock::now();
    Prefill(batch, length);
    return double(batch) * length / Seconds(start);
  }

  // Prefill tokens/s of one step of `chunk` tokens at positions
  // [context - chunk, context) of sequence 0, whose earlier positions are
  // already cached. Those are random K/V written straight into the cache
  // (FillCache): a real 32k-token prefill would take far longer than the
  // figure being measured, and attention's cost does not depend on values.
  double PrefillChunkRate(int context, int chunk) {
    FillCache(context - chunk);
    std::vector<int> tokens(chunk);
    for (int& t : tokens) t = RandomToken();
    builder_.Add(tokens, context - chunk, Table(0), true);
    const auto start = Clock::now();
    Run();
    return chunk / Seconds(start);
  }

  // Steps/s of one step in which sequence 0, with `context` positions
  // cached, computes `tokens` query tokens and the logits of every one: a
  // decode step that verifies tokens - 1 speculative drafts.
  double VerifyStepRate(int context, int tokens) {
    FillCache(context);
    std::vector<int> ids(tokens);
    for (int& t : ids) t = RandomToken();
    builder_.Add(ids, context, Table(0), /*want_logits=*/false);
    internal::StepPlan plan = builder_.Take();
    for (int i = 0; i < tokens; ++i) plan.add_logits_rows(i);
    const auto start = Clock::now();
    Run(std::move(plan));
    return 1 / Seconds(start);
  }

  // Seconds the last Decode's steps spent in tensor-parallel collectives.
  double collective_seconds() const { return collective_seconds_; }

 private:
  void Prefill(int batch, int length) {
    for (int b = 0; b < batch; ++b) {
      std::vector<int> tokens(length);
      for (int& t : tokens) t = RandomToken();
      builder_.Add(tokens, 0, Table(b), true);
    }
    Run();
  }
  // Random K/V (one 1024-token pattern, repeated) at positions [filled_,
  // length) of sequence 0 on every layer.
  void FillCache(int length) {
    constexpr int kPattern = 1024;
    const worker::KvCache& kv = runner_.kv_cache();
    const int width = kv.shape().kv_heads * kv.shape().head_dim;
    if (pattern_.empty()) {
      pattern_.resize(size_t(2) * kPattern * width);
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      for (float& x : pattern_) x = dist(rng_);
    }
    const std::span<const int> table = Table(0);
    std::vector<int32_t> slots;
    for (int p = filled_; p < length; p += kPattern) {
      const int n = std::min(kPattern, length - p);
      slots.resize(n);
      for (int i = 0; i < n; ++i) {
        slots[i] =
            table[(p + i) / kBlockSize] * kBlockSize + (p + i) % kBlockSize;
      }
      for (int l = 0; l < kv.shape().num_layers; ++l) {
        cpu::WriteKv(pattern_.data(), pattern_.data() + size_t(n) * width,
                     width, n, slots.data(), kv.layer(l));
      }
    }
    filled_ = std::max(filled_, length);
  }
  void Run() { Run(builder_.Take()); }
  void Run(internal::StepPlan plan) {
    const absl::Status status = runner_.Step(std::move(plan), logits_);
    collective_seconds_ +=
        absl::ToDoubleSeconds(runner_.last_collective_time());
    if (!status.ok()) {
      std::fprintf(stderr, "step failed: %s\n", status.ToString().c_str());
      std::exit(1);
    }
  }
  std::span<const int> Table(int b) {
    table_.resize(per_seq_);
    for (int i = 0; i < per_seq_; ++i) table_[i] = b * per_seq_ + i;
    return table_;  // Add() copies it into the plan
  }
  int RandomToken() {
    return std::uniform_int_distribution<int>(
        3, runner_.config().vocab_size - 1)(rng_);
  }
  static double Seconds(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  worker::ModelRunner& runner_;
  std::mt19937 rng_;
  int per_seq_;
  worker::StepPlanBuilder builder_{kBlockSize};
  std::vector<int> table_;
  std::vector<float> logits_;
  std::vector<float> pattern_;  // FillCache's K rows, then its V rows
  int filled_ = 0;              // positions of sequence 0 FillCache wrote
  double collective_seconds_ = 0;
};

}  // namespace hydra::bench

#endif  // HYDRA_BENCH_FORWARD_WORKLOAD_H_
