#include "scheduler/prefill_chunks.h"

#include <algorithm>
#include <cmath>

namespace hydra::scheduler {
namespace {

// What a chunk of `n` tokens of `c` adds to the step's predicted time.
double ChunkMs(const StepCostModel& model, const PrefillCandidate& c, int n) {
  if (n <= 0) return 0;
  const StepCostModel::Coefficients& k = model.coefficients();
  return k.per_token_ms * n + k.per_key_read_ms * KeyReads(c.computed, n) +
         k.per_logits_row_ms;
}

// The largest n in [from, cap] whose chunk costs at most `ms` (chunk cost
// grows with n); `from` when even that costs more.
int LargestWithin(const StepCostModel& model, const PrefillCandidate& c,
                  int from, int cap, double ms) {
  if (cap <= from) return from;
  if (std::isinf(ms) || ChunkMs(model, c, cap) <= ms) return cap;
  int lo = from, hi = cap;  // ChunkMs(lo) fits or lo == from; hi does not
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (ChunkMs(model, c, mid) <= ms ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

std::vector<int> SizePrefillChunks(std::span<const PrefillCandidate> candidates,
                                   const ChunkLimits& limits,
                                   const StepCostModel& model) {
  const int k = static_cast<int>(candidates.size());
  std::vector<int> n(k, 0);
  if (k == 0 || limits.max_tokens <= 0) return n;
  int tokens_left = limits.max_tokens;
  double time_left = std::max(0.0, limits.time_left_ms);

  auto grow = [&](int i, int token_cap, double ms) {
    const PrefillCandidate& c = candidates[i];
    const int cap = std::min(c.remaining, n[i] + std::max(0, token_cap));
    const double spent = ChunkMs(model, c, n[i]);
    const int to = LargestWithin(model, c, n[i], cap, spent + ms);
    tokens_left -= to - n[i];
    time_left -= ChunkMs(model, c, to) - spent;
    n[i] = to;
  };

  // 1. Fair shares among the most important.
  int top = 0;
  while (top < k && candidates[top].priority == candidates[0].priority) ++top;
  const int share_tokens = std::max(1, limits.max_tokens / top);
  const double share_ms = time_left / top;
  for (int i = 0; i < top; ++i) {
    grow(i, std::min(share_tokens, tokens_left), share_ms);
  }
  // 2. The rest, in order.
  for (int i = 0; i < k && tokens_left > 0; ++i) {
    grow(i, tokens_left, std::max(0.0, time_left));
  }
  // 3. Progress.
  for (int i = 0; i < k && tokens_left > 0; ++i) {
    if (i != 0 && !candidates[i].started) continue;
    const int floor = std::min(candidates[i].remaining, limits.min_chunk);
    const int add = std::min(floor - n[i], tokens_left);
    if (add > 0) {
      n[i] += add;
      tokens_left -= add;
    }
  }
  return n;
}

}  // namespace hydra::scheduler
