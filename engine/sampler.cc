#include "engine/sampler.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>

#include "worker/cpu/vector_math.h"

namespace hydra::engine {
namespace {

// Weights are summed per block of this many tokens (eight AVX2 vectors), so
// a draw finds its block from a few hundred sums and scans one block.
constexpr int kBlock = 64;
// Below this exponent e^x underflows float: such weights are exactly 0, so a
// token masked with -inf can never be drawn.
constexpr float kMinExponent = -87.0f;
// Below this temperature sampling is greedy (see the header).
constexpr float kMinTemperature = 1e-5f;

bool HasPenalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
         p.frequency_penalty != 0.0f;
}

// `counts` is vocab-sized and all zero on entry and on exit, so a call costs
// O(prompt + output) rather than O(vocab).
void PenalizeWith(const SamplingParams& p, std::span<float> logits,
                  std::span<const int> prompt, std::span<const int> output,
                  std::vector<int>& counts, std::vector<int>& touched) {
  // Marks a prompt token that the output does not hold: penalized for
  // repetition, but its output count is zero.
  constexpr int kPromptOnly = -1;
  const int vocab = static_cast<int>(logits.size());
  touched.clear();
  for (int t : output) {
    if (t < 0 || t >= vocab) continue;
    if (counts[t]++ == 0) touched.push_back(t);
  }
  for (int t : prompt) {
    if (t < 0 || t >= vocab || counts[t] != 0) continue;
    counts[t] = kPromptOnly;
    touched.push_back(t);
  }
  const float r = p.repetition_penalty;
  constexpr float kMaxPenalizedLogit = 1e30f;
  for (int t : touched) {
    float& logit = logits[t];
    if (r != 1.0f) logit = logit > 0 ? logit / r : logit * r;
    const int count = std::max(counts[t], 0);
    if (count > 0) logit -= p.presence_penalty + p.frequency_penalty * count;
    // A tiny penalty divides a logit to infinity, and inf - inf is the NaN
    // a softmax would then spread over every logprob: stay finite.
    logit = std::clamp(logit, -kMaxPenalizedLogit, kMaxPenalizedLogit);
    counts[t] = 0;
  }
}

// NaNs are skipped: _mm256_max_ps returns its second operand when either is
// NaN.
float MaxLogit(std::span<const float> logits) {
  const int n = static_cast<int>(logits.size());
  __m256 acc = _mm256_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_max_ps(_mm256_loadu_ps(logits.data() + i), acc);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float max = *std::max_element(lanes, lanes + 8);
  for (; i < n; ++i) max = std::max(max, logits[i]);
  return max;
}

// w[i] = e^((x[i] - max) * inv_t), set to 0 below `floor` or when the
// exponent is below kMinExponent; block_sums[b] = the sum of block b.
// Returns the total before the floor. The most likely token weighs 1.
double ExpWeights(std::span<const float> x, float max, float inv_t, float floor,
                  std::vector<float>& w, std::vector<double>& block_sums) {
  const int n = static_cast<int>(x.size());
  w.resize(n);
  block_sums.resize((n + kBlock - 1) / kBlock);
  const __m256 v_max = _mm256_set1_ps(max);
  const __m256 v_inv_t = _mm256_set1_ps(inv_t);
  const __m256 v_min_exponent = _mm256_set1_ps(kMinExponent);
  const __m256 v_floor = _mm256_set1_ps(floor);
  double total = 0;
  for (size_t b = 0; b < block_sums.size(); ++b) {
    const int end = std::min<int>((b + 1) * kBlock, n);
    int i = b * kBlock;
    __m256 all = _mm256_setzero_ps();
    __m256 kept = _mm256_setzero_ps();
    for (; i + 8 <= end; i += 8) {
      const __m256 a = _mm256_mul_ps(
          _mm256_sub_ps(_mm256_loadu_ps(x.data() + i), v_max), v_inv_t);
      const __m256 e = _mm256_and_ps(
          cpu::Exp(a), _mm256_cmp_ps(a, v_min_exponent, _CMP_GE_OQ));
      const __m256 e_kept =
          _mm256_and_ps(e, _mm256_cmp_ps(e, v_floor, _CMP_GE_OQ));
      _mm256_storeu_ps(w.data() + i, e_kept);
      all = _mm256_add_ps(all, e);
      kept = _mm256_add_ps(kept, e_kept);
    }
    float sum_all = cpu::HorizontalSum(all);
    float sum_kept = cpu::HorizontalSum(kept);
    for (; i < end; ++i) {
      const float a = (x[i] - max) * inv_t;
      const float e = a >= kMinExponent ? std::exp(a) : 0.0f;
      w[i] = e >= floor ? e : 0.0f;
      sum_all += e;
      sum_kept += w[i];
    }
    block_sums[b] = sum_kept;
    total += sum_all;
  }
  return total;
}

// Token order everywhere: larger logit first, lower id among ties.
bool RankedBefore(std::span<const float> x, int i, int t) {
  return x[i] > x[t] || (x[i] == x[t] && i < t);
}

// RankedBefore(x, i + lane, t) for the eight lanes at i, as a mask.
__m256 RankedBefore8(std::span<const float> x, int i, int t) {
  const __m256 v = _mm256_loadu_ps(x.data() + i);
  const __m256 v_t = _mm256_set1_ps(x[t]);
  const __m256i ids = _mm256_add_epi32(
      _mm256_set1_epi32(i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 lower_id =
      _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(t), ids));
  return _mm256_or_ps(
      _mm256_cmp_ps(v, v_t, _CMP_GT_OQ),
      _mm256_and_ps(_mm256_cmp_ps(v, v_t, _CMP_EQ_OQ), lower_id));
}

// Total weight of the tokens ranked before token t.
double WeightBefore(std::span<const float> x, std::span<const float> w, int t) {
  const int n = static_cast<int>(x.size());
  double total = 0;
  for (int begin = 0; begin < n; begin += kBlock) {
    const int end = std::min(begin + kBlock, n);
    int i = begin;
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= end; i += 8) {
      acc = _mm256_add_ps(acc, _mm256_and_ps(_mm256_loadu_ps(w.data() + i),
                                             RankedBefore8(x, i, t)));
    }
    float sum = cpu::HorizontalSum(acc);
    for (; i < end; ++i) {
      if (RankedBefore(x, i, t)) sum += w[i];
    }
    total += sum;
  }
  return total;
}

// Zeroes the weights of token t and of every token ranked after it.
void DropFrom(std::span<const float> x, int t, std::vector<float>& w,
              std::vector<double>& block_sums) {
  const int n = static_cast<int>(x.size());
  for (size_t b = 0; b < block_sums.size(); ++b) {
    const int end = std::min<int>((b + 1) * kBlock, n);
    int i = b * kBlock;
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= end; i += 8) {
      const __m256 kept =
          _mm256_and_ps(_mm256_loadu_ps(w.data() + i), RankedBefore8(x, i, t));
      _mm256_storeu_ps(w.data() + i, kept);
      acc = _mm256_add_ps(acc, kept);
    }
    float sum = cpu::HorizontalSum(acc);
    for (; i < end; ++i) {
      if (!RankedBefore(x, i, t)) w[i] = 0;
      sum += w[i];
    }
    block_sums[b] = sum;
  }
}

// Position among n weights (weight_at(j), j in [0, n)) of the first whose
// cumulative weight exceeds target. Rounding can leave it unreached; then
// the last positive weight wins, never a zero one.
template <typename WeightAt>
int ScanTo(int n, double target, double cumulative, WeightAt weight_at) {
  int last_positive = 0;
  for (int j = 0; j < n; ++j) {
    const float w = weight_at(j);
    if (w <= 0) continue;
    cumulative += w;
    if (target < cumulative) return j;
    last_positive = j;
  }
  return last_positive;
}

template <typename WeightAt>
int PickPosition(int n, double u, WeightAt weight_at) {
  double total = 0;
  for (int j = 0; j < n; ++j) total += weight_at(j);
  return ScanTo(n, u * total, 0.0, weight_at);
}

// Token drawn from the whole vocabulary's weights: the block is found from
// the block sums, then the token within it.
int PickBlocked(std::span<const float> w, std::span<const double> block_sums,
                double u) {
  const double total =
      std::accumulate(block_sums.begin(), block_sums.end(), 0.0);
  const double target = u * total;
  double cumulative = 0;
  int block = -1;
  for (int b = 0; b < static_cast<int>(block_sums.size()); ++b) {
    if (block_sums[b] <= 0) continue;
    block = b;
    if (target < cumulative + block_sums[b]) break;
    cumulative += block_sums[b];
  }
  if (block < 0) return 0;  // nothing has weight; only NaN logits get here
  const int begin = block * kBlock;
  const int size = std::min<int>(kBlock, w.size() - begin);
  return begin +
         ScanTo(size, target, cumulative, [&](int j) { return w[begin + j]; });
}

// RankedBefore for (logit, id) pairs.
bool Better(const std::pair<float, int>& a, const std::pair<float, int>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// The k best (logit, id) pairs, best first. One pass against a heap whose
// front is the worst kept, eight logits per comparison: for small k almost
// every vector falls below the front and costs nothing more.
void TopK(std::span<const float> logits, int k,
          std::vector<std::pair<float, int>>& top) {
  const int n = static_cast<int>(logits.size());
  top.clear();
  for (int i = 0; i < k; ++i) top.emplace_back(logits[i], i);
  std::make_heap(top.begin(), top.end(), Better);
  // A later id loses a tie, so only a strictly larger logit gets in.
  auto consider = [&](int i) {
    if (!(logits[i] > top.front().first)) return;
    std::pop_heap(top.begin(), top.end(), Better);
    top.back() = {logits[i], i};
    std::push_heap(top.begin(), top.end(), Better);
  };
  int i = k;
  for (; i + 8 <= n; i += 8) {
    const __m256 worst = _mm256_set1_ps(top.front().first);
    unsigned mask = _mm256_movemask_ps(
        _mm256_cmp_ps(_mm256_loadu_ps(logits.data() + i), worst, _CMP_GT_OQ));
    for (; mask != 0; mask &= mask - 1) consider(i + std::countr_zero(mask));
  }
  for (; i < n; ++i) consider(i);
  std::sort_heap(top.begin(), top.end(), Better);
}

}  // namespace

int Argmax(std::span<const float> logits) {
  const float max = MaxLogit(logits);
  const auto it = std::find(logits.begin(), logits.end(), max);
  return it == logits.end() ? 0 : static_cast<int>(it - logits.begin());
}

void ApplyPenalties(const SamplingParams& p, std::span<float> logits,
                    std::span<const int> prompt, std::span<const int> output) {
  std::vector<int> counts(logits.size());
  std::vector<int> touched;
  PenalizeWith(p, logits, prompt, output, counts, touched);
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params), rng_(params.seed) {}

SampledToken Sampler::Sample(std::span<const float> logits,
                             std::span<const int> prompt,
                             std::span<const int> output) {
  std::span<const float> x = logits;
  if (HasPenalties(params_) && !(prompt.empty() && output.empty())) {
    penalized_.assign(logits.begin(), logits.end());
    counts_.resize(logits.size());
    PenalizeWith(params_, penalized_, prompt, output, counts_, touched_);
    x = penalized_;
  }
  SampledToken result;
  const bool greedy =
      params_.temperature < kMinTemperature || params_.top_k == 1;
  result.token_id = greedy ? Argmax(x) : Draw(x);
  if (params_.logprobs.has_value()) FillLogprobs(x, result);
  return result;
}

int Sampler::Draw(std::span<const float> logits) {
  const int n = static_cast<int>(logits.size());
  if (params_.top_k > 0 && params_.top_k < n) return DrawTopK(logits);
  // Capped at 1, the weight of the most likely token, which always stays.
  const float floor = std::min(params_.min_p, 1.0f);
  const double total =
      ExpWeights(logits, MaxLogit(logits), 1.0f / params_.temperature, floor,
                 weights_, block_sums_);
  if (params_.top_p < 1.0f) return DrawNucleus(logits, params_.top_p * total);
  return PickBlocked(weights_, block_sums_, Uniform());
}

int Sampler::DrawTopK(std::span<const float> logits) {
  const int k = params_.top_k;
  TopK(logits, k, top_);
  const float max_logit = top_[0].first;
  const float inv_t = 1.0f / params_.temperature;
  weights_.resize(k);
  double total = 0;
  for (int j = 0; j < k; ++j) {
    const float a = (top_[j].first - max_logit) * inv_t;
    weights_[j] = a >= kMinExponent ? std::exp(a) : 0.0f;
    total += weights_[j];
  }
  // Both cuts keep a prefix of the sorted candidates; the shorter one wins.
  // Weights are relative to the most likely token, so min-p needs no sum.
  int kept = 1;
  double cumulative = weights_[0];
  const double target = params_.top_p * total;
  while (kept < k && cumulative < target && weights_[kept] >= params_.min_p) {
    cumulative += weights_[kept++];
  }
  const int j =
      PickPosition(kept, Uniform(), [&](int j) { return weights_[j]; });
  return top_[j].second;
}

// Rejection sampling instead of sorting: draw from everything still
// allowed; a token ranked after the nucleus is refused, and it and all
// below it are dropped before the next draw. The result follows the
// nucleus distribution exactly, and at most 1 / top_p draws are expected
// (usually one), each costing a pass over the weights, not a sort.
// A token that passed min-p has only tokens that passed it above it, so
// the floored weights give its rank's mass exactly.
int Sampler::DrawNucleus(std::span<const float> logits, double target) {
  while (true) {
    const int t = PickBlocked(weights_, block_sums_, Uniform());
    const double before = WeightBefore(logits, weights_, t);
    // The most likely token (nothing before it) is always in the nucleus.
    if (before < target || before == 0) return t;
    DropFrom(logits, t, weights_, block_sums_);
  }
}

void Sampler::FillLogprobs(std::span<const float> logits,
                           SampledToken& result) {
  const float max_logit = MaxLogit(logits);
  const double log_z =
      max_logit + std::log(ExpWeights(logits, max_logit, 1.0f, 0.0f, weights_,
                                      block_sums_));
  auto logprob = [&](float logit) { return static_cast<float>(logit - log_z); };
  result.logprob = logprob(logits[result.token_id]);
  const int n = static_cast<int>(logits.size());
  const int top = std::clamp(*params_.logprobs, 0, n);
  if (top == 0) return;
  TopK(logits, top, top_);
  result.top.reserve(top);
  for (const auto& [logit, token_id] : top_) {
    result.top.push_back({token_id, logprob(logit)});
  }
}

}  // namespace hydra::engine
