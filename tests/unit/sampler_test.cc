#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace hydra::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> RandomLogits(int n, float sigma, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> logits(n);
  for (float& x : logits) x = normal(gen);
  return logits;
}

SamplingParams Params(float temperature, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

// Token ids by logit, largest first (lower id among ties).
std::vector<int> Ranked(std::span<const float> logits) {
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return logits[a] > logits[b]; });
  return order;
}

// The distribution the sampler should draw from, computed the slow way:
// full sort, temperature, top-k, top-p, min-p, renormalize.
std::vector<double> Expected(std::span<const float> logits,
                             const SamplingParams& p) {
  const std::vector<int> order = Ranked(logits);
  const int n = static_cast<int>(logits.size());
  int kept = p.top_k > 0 ? std::min(p.top_k, n) : n;
  std::vector<double> w(kept);
  for (int j = 0; j < kept; ++j) {
    w[j] =
        std::exp((double{logits[order[j]]} - logits[order[0]]) / p.temperature);
  }
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  double cumulative = 0;
  for (int j = 0; j < kept; ++j) {
    cumulative += w[j] / total;
    if (cumulative >= p.top_p) {
      kept = j + 1;
      break;
    }
  }
  std::vector<double> probs(n, 0.0);
  double kept_total = 0;
  for (int j = 0; j < kept; ++j) {
    if (w[j] >= p.min_p * w[0]) kept_total += w[j];
  }
  for (int j = 0; j < kept; ++j) {
    if (w[j] >= p.min_p * w[0]) probs[order[j]] = w[j] / kept_total;
  }
  return probs;
}

std::vector<double> LogSoftmax(std::span<const float> logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(x - max);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - max - std::log(sum));
  return out;
}

// Upper 1 - 3e-5 quantile of chi-square with `df` degrees of freedom
// (Wilson-Hilferty, z = 4); the seeds are fixed, so this is no flake risk,
// only slack for an honest sampler.
double ChiSquareLimit(int df) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + 4.0 * std::sqrt(a), 3);
}

// Draws `draws` tokens and checks their frequencies against `expected`:
// tokens it gives probability 0 must never appear.
void ExpectFrequencies(Sampler& sampler, std::span<const float> logits,
                       const std::vector<double>& expected, int draws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i)
    ++counts[sampler.Sample(logits, {}, {}).token_id];
  double chi2 = 0;
  int support = 0;
  for (size_t t = 0; t < counts.size(); ++t) {
    if (expected[t] == 0) {
      EXPECT_EQ(counts[t], 0) << "token " << t << " has probability 0";
      continue;
    }
    ++support;
    const double e = expected[t] * draws;
    chi2 += (counts[t] - e) * (counts[t] - e) / e;
    EXPECT_NEAR(counts[t] / static_cast<double>(draws), expected[t], 0.006)
        << "token " << t;
  }
  ASSERT_GT(support, 1) << "a test of one possible token proves nothing";
  EXPECT_LT(chi2, ChiSquareLimit(support - 1));
}

TEST(ArgmaxTest, FindsLargestAndLowestIndexAmongTies) {
  EXPECT_EQ(Argmax(std::vector<float>{1, 3, 3, 2}), 1);
  // Ties across vector lanes and in the scalar tail.
  std::vector<float> logits(37, -1.0f);
  logits[36] = 5;
  EXPECT_EQ(Argmax(logits), 36);
  logits[9] = 5;
  EXPECT_EQ(Argmax(logits), 9);
  logits[2] = 5;
  EXPECT_EQ(Argmax(logits), 2);
  logits[0] = kInf;
  EXPECT_EQ(Argmax(logits), 0);
}

TEST(SamplerTest, TemperatureZeroIsArgmaxOfEveryRow) {
  // 1e-6 is greedy too: below 1e-5, as in vLLM.
  for (float temperature : {0.0f, 1e-6f}) {
    Sampler sampler(Params(temperature));
    for (uint32_t seed = 0; seed < 50; ++seed) {
      const std::vector<float> logits = RandomLogits(1001, 2.0f, seed);
      EXPECT_EQ(sampler.Sample(logits, {}, {}).token_id, Argmax(logits));
    }
  }
  // Ties go to the lower id, not to a draw.
  Sampler sampler(Params(0.0f));
  EXPECT_EQ(sampler.Sample(std::vector<float>(20, 1.0f), {}, {}).token_id, 0);
}

TEST(SamplerTest, DrawIsInverseCdfOfTopFiftyThreeBits) {
  // Four equal logits weigh 1 each, so the documented draw picks
  // floor(4 u) with u = (rng() >> 11) * 2^-53 from mt19937_64(seed).
  const std::vector<float> logits(4, 0.5f);
  Sampler sampler(Params(1.0f, 1234));
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 1000; ++i) {
    const double u = (rng() >> 11) * 0x1.0p-53;
    ASSERT_EQ(sampler.Sample(logits, {}, {}).token_id, static_cast<int>(4 * u))
        << "draw " << i;
  }
}

// Each mode exercises a different path through the sampler.
std::vector<SamplingParams> Modes() {
  std::vector<SamplingParams> modes;
  SamplingParams p = Params(0.8f);
  modes.push_back(p);  // temperature only
  p.top_k = 40;
  modes.push_back(p);
  p.top_k = 0;
  p.top_p = 0.9f;
  modes.push_back(p);
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  modes.push_back(p);
  p.top_k = 100;
  p.top_p = 0.8f;
  modes.push_back(p);
  return modes;
}

// The logits of step `step` of a made-up decode, made once.
const std::vector<float>& StepLogits(int step) {
  static auto* const rows = new std::vector<std::vector<float>>;
  while (static_cast<int>(rows->size()) <= step) {
    rows->push_back(RandomLogits(32000, 2.5f, 1000 + rows->size()));
  }
  return (*rows)[step];
}

std::vector<int> Decode(Sampler& sampler, int steps) {
  std::vector<int> tokens;
  for (int s = 0; s < steps; ++s) {
    tokens.push_back(sampler.Sample(StepLogits(s), {}, {}).token_id);
  }
  return tokens;
}

TEST(SamplerTest, SameSeedSameTokens) {
  for (const SamplingParams& p : Modes()) {
    Sampler a(p);
    Sampler b(p);
    const std::vector<int> first = Decode(a, 200);
    EXPECT_EQ(first, Decode(b, 200));
    EXPECT_GT(std::set<int>(first.begin(), first.end()).size(), 20u)
        << "no randomness to reproduce";
  }
}

TEST(SamplerTest, DrawsDoNotDependOnOtherSamplers) {
  for (const SamplingParams& p : Modes()) {
    SamplingParams other = p;
    other.seed = 99;
    other.top_p = 0.5f;
    Sampler a_alone(p);
    Sampler b_alone(other);
    const std::vector<int> a_expected = Decode(a_alone, 150);
    const std::vector<int> b_expected = Decode(b_alone, 150);
    Sampler a(p);
    Sampler b(other);
    std::vector<int> a_tokens;
    std::vector<int> b_tokens;
    for (int s = 0; s < 150; ++s) {
      const std::vector<float>& logits = StepLogits(s);
      // B samples every row, sometimes twice, as a busy batch neighbour.
      b_tokens.push_back(b.Sample(logits, {}, {}).token_id);
      if (s % 3 == 0) b.Sample(logits, {}, {});
      a_tokens.push_back(a.Sample(logits, {}, {}).token_id);
    }
    EXPECT_EQ(a_tokens, a_expected);
    EXPECT_NE(b_tokens, b_expected);  // B drew extra, so its stream moved on
  }
}

TEST(SamplerTest, DifferentSeedsDiffer) {
  for (SamplingParams p : Modes()) {
    Sampler a(p);
    p.seed = 2;
    Sampler b(p);
    const std::vector<int> first = Decode(a, 100);
    const std::vector<int> second = Decode(b, 100);
    int same = 0;
    for (int i = 0; i < 100; ++i) same += first[i] == second[i];
    EXPECT_LT(same, 50);
  }
}

TEST(SamplerTest, TopKNeverLeavesTheKLargest) {
  // Flat logits: without the cut nearly every draw would land outside.
  const std::vector<float> logits = RandomLogits(32000, 0.5f, 7);
  const std::vector<int> ranked = Ranked(logits);
  const std::set<int> allowed(ranked.begin(), ranked.begin() + 40);
  SamplingParams p = Params(1.0f);
  p.top_k = 40;
  Sampler sampler(p);
  std::set<int> seen;
  for (int i = 0; i < 5000; ++i) {
    const int t = sampler.Sample(logits, {}, {}).token_id;
    ASSERT_TRUE(allowed.count(t)) << "token " << t << " at draw " << i;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 40u);
}

// The nucleus, computed independently: the smallest prefix of the sorted
// distribution whose mass reaches top_p.
std::set<int> Nucleus(std::span<const float> logits, float temperature,
                      float top_p) {
  SamplingParams p = Params(temperature);
  p.top_p = top_p;
  const std::vector<double> probs = Expected(logits, p);
  std::set<int> nucleus;
  for (size_t t = 0; t < probs.size(); ++t) {
    if (probs[t] > 0) nucleus.insert(t);
  }
  return nucleus;
}

TEST(SamplerTest, TopPNeverLeavesTheNucleus) {
  // 0.05 on a flat vocabulary makes most first draws fall outside, which
  // the sampler must redraw from.
  for (const auto& [sigma, top_p] :
       {std::pair{2.0f, 0.9f}, {1.0f, 0.5f}, {1.0f, 0.05f}}) {
    const std::vector<float> logits = RandomLogits(32000, sigma, 11);
    const std::set<int> nucleus = Nucleus(logits, 1.0f, top_p);
    ASSERT_LT(nucleus.size(), logits.size() / 2);
    SamplingParams p = Params(1.0f, 5);
    p.top_p = top_p;
    Sampler sampler(p);
    std::set<int> seen;
    for (int i = 0; i < 3000; ++i) {
      const int t = sampler.Sample(logits, {}, {}).token_id;
      ASSERT_TRUE(nucleus.count(t))
          << "top_p " << top_p << ": token " << t << " at draw " << i;
      seen.insert(t);
    }
    EXPECT_GT(seen.size(), std::min<size_t>(nucleus.size(), 3000) / 4);
  }
}

TEST(SamplerTest, MinPNeverBelowThreshold) {
  const std::vector<float> logits = RandomLogits(32000, 1.5f, 13);
  const float max = *std::max_element(logits.begin(), logits.end());
  SamplingParams p = Params(1.0f);
  p.min_p = 0.2f;
  Sampler sampler(p);
  std::set<int> seen;
  for (int i = 0; i < 5000; ++i) {
    const int t = sampler.Sample(logits, {}, {}).token_id;
    // p_t / p_max = e^(logit_t - logit_max) at temperature 1.
    ASSERT_GE(std::exp(double{logits[t]} - max), 0.2) << "token " << t;
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(SamplerTest, MaskedTokensAreNeverDrawn) {
  std::vector<float> logits = RandomLogits(300, 0.1f, 17);
  for (size_t t = 0; t < logits.size(); t += 2) logits[t] = -kInf;
  for (const SamplingParams& p : Modes()) {
    Sampler sampler(p);
    for (int i = 0; i < 2000; ++i) {
      ASSERT_EQ(sampler.Sample(logits, {}, {}).token_id % 2, 1);
    }
  }
}

TEST(SamplerTest, TemperatureFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f,
                                     0.0f, 1.5f, -1.0f, 0.7f};
  for (float temperature : {0.7f, 1.0f, 2.5f}) {
    SamplingParams p = Params(temperature, 3);
    Sampler sampler(p);
    ExpectFrequencies(sampler, logits, Expected(logits, p), 200000);
  }
}

TEST(SamplerTest, FilteredFrequenciesMatchRenormalizedDistribution) {
  // 203 tokens: several blocks and a scalar tail, which holds the most
  // likely token and one in the middle.
  std::vector<float> logits = RandomLogits(203, 1.0f, 19);
  logits[202] = *std::max_element(logits.begin(), logits.end()) + 0.1f;
  logits[201] = 1.0f;
  std::vector<SamplingParams> cases;
  SamplingParams p = Params(0.9f, 4);
  p.top_k = 12;
  cases.push_back(p);
  p.min_p = 0.6f;
  cases.push_back(p);
  p.min_p = 0;
  p.top_k = 0;
  p.top_p = 0.3f;
  cases.push_back(p);
  p.top_p = 1.0f;
  p.min_p = 0.3f;
  cases.push_back(p);
  p.top_k = 20;
  p.top_p = 0.6f;
  p.min_p = 0.1f;
  cases.push_back(p);
  p.top_k = 0;
  cases.push_back(p);
  for (const SamplingParams& c : cases) {
    SCOPED_TRACE(testing::Message() << "top_k " << c.top_k << " top_p "
                                    << c.top_p << " min_p " << c.min_p);
    Sampler sampler(c);
    ExpectFrequencies(sampler, logits, Expected(logits, c), 200000);
  }
}

TEST(PenaltiesTest, MatchHandComputedValues) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, -3.0f, 1.0f, 4.0f};
  const std::vector<int> prompt = {0, 1, 1, 6, -1};  // 6, -1: not in vocab
  const std::vector<int> output = {2, 3, 3, 3, 0};
  ApplyPenalties(p, logits, prompt, output);
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 2 - 0.5f - 0.25f * 1);
  EXPECT_FLOAT_EQ(logits[1], -1.0f * 2);  // prompt only: no presence
  EXPECT_FLOAT_EQ(logits[2], 0.5f / 2 - 0.5f - 0.25f * 1);
  // Repetition once per distinct token, frequency once per occurrence.
  EXPECT_FLOAT_EQ(logits[3], -3.0f * 2 - 0.5f - 0.25f * 3);
  EXPECT_FLOAT_EQ(logits[4], 1.0f);
  EXPECT_FLOAT_EQ(logits[5], 4.0f);
}

// Issue 15 item 3: a repetition penalty of 1e-45 once turned positive
// logits into inf and every logprob into NaN.
TEST(PenaltiesTest, TinyRepetitionPenaltyKeepsLogitsAndLogprobsFinite) {
  const std::vector<float> logits = {3.0f, 2.0f, -1.0f, 0.5f};
  for (float r : {1e-45f, 1e-38f, 1e-10f}) {
    SCOPED_TRACE(r);
    SamplingParams p = Params(1.0f);
    p.repetition_penalty = r;
    p.logprobs = 2;
    std::vector<float> penalized = logits;
    ApplyPenalties(p, penalized, std::vector<int>{0, 1}, {});
    for (float v : penalized) EXPECT_TRUE(std::isfinite(v)) << v;
    Sampler sampler(p);
    const SampledToken s = sampler.Sample(logits, std::vector<int>{0, 1}, {});
    EXPECT_TRUE(s.token_id == 0 || s.token_id == 1) << s.token_id;
    EXPECT_FALSE(std::isnan(s.logprob));
    for (const TokenLogprob& t : s.top) EXPECT_FALSE(std::isnan(t.logprob));
    SamplingParams greedy = p;
    greedy.temperature = 0.0f;
    EXPECT_EQ(
        Sampler(greedy).Sample(logits, std::vector<int>{0, 1}, {}).token_id, 0);
  }
}

TEST(PenaltiesTest, NeutralValuesChangeNothing) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f};
  ApplyPenalties(SamplingParams{}, logits, std::vector<int>{0, 1},
                 std::vector<int>{2, 2});
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -1.0f, 0.5f}));
}

TEST(PenaltiesTest, SampleAppliesThemAndLeavesTheRowAlone) {
  const std::vector<float> logits = {5.0f, 4.9f, 0.0f};
  SamplingParams p = Params(0.0f);
  p.frequency_penalty = 1.0f;
  Sampler sampler(p);
  EXPECT_EQ(sampler.Sample(logits, {}, std::vector<int>{0}).token_id, 1);
  EXPECT_EQ(logits[0], 5.0f);
  // Presence and frequency look at the output only.
  EXPECT_EQ(sampler.Sample(logits, std::vector<int>{0}, {}).token_id, 0);
  // Repetition also looks at the prompt.
  p.frequency_penalty = 0;
  p.repetition_penalty = 1.1f;
  Sampler repetition(p);
  EXPECT_EQ(repetition.Sample(logits, std::vector<int>{0}, {}).token_id, 1);
  // Later calls see their own history, not the previous call's.
  EXPECT_EQ(repetition.Sample(logits, {}, {}).token_id, 0);
}

TEST(LogprobsTest, ChosenAndTopMatchLogSoftmax) {
  const std::vector<float> logits = RandomLogits(1000, 2.0f, 23);
  const std::vector<double> expected = LogSoftmax(logits);
  const std::vector<int> ranked = Ranked(logits);
  SamplingParams p = Params(1.0f);
  p.logprobs = 5;
  Sampler sampler(p);
  for (int i = 0; i < 20; ++i) {
    const SampledToken s = sampler.Sample(logits, {}, {});
    EXPECT_NEAR(s.logprob, expected[s.token_id], 1e-5);
    ASSERT_EQ(s.top.size(), 5u);
    for (int j = 0; j < 5; ++j) {
      EXPECT_EQ(s.top[j].token_id, ranked[j]);
      EXPECT_NEAR(s.top[j].logprob, expected[ranked[j]], 1e-5);
      if (j > 0) {
        EXPECT_GE(s.top[j - 1].logprob, s.top[j].logprob);
      }
    }
  }
}

TEST(LogprobsTest, CoverTheVocabularyAndSumToOne) {
  const std::vector<float> logits = RandomLogits(1000, 3.0f, 29);
  SamplingParams p = Params(1.0f);
  p.logprobs = 1000;
  const SampledToken s = Sampler(p).Sample(logits, {}, {});
  ASSERT_EQ(s.top.size(), 1000u);
  double sum = 0;
  std::set<int> ids;
  for (const TokenLogprob& t : s.top) {
    sum += std::exp(double{t.logprob});
    ids.insert(t.token_id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(LogprobsTest, ArePenalizedButBeforeTemperatureAndFilters) {
  const std::vector<float> logits = RandomLogits(100, 1.0f, 31);
  const std::vector<int> output = {3, 3, 50};
  SamplingParams p = Params(0.5f);
  p.top_k = 3;
  p.frequency_penalty = 0.7f;
  p.logprobs = 2;
  std::vector<float> penalized = logits;
  ApplyPenalties(p, penalized, {}, output);
  const std::vector<double> expected = LogSoftmax(penalized);
  const SampledToken s = Sampler(p).Sample(logits, {}, output);
  EXPECT_NEAR(s.logprob, expected[s.token_id], 1e-5);
  EXPECT_NEAR(s.top[0].logprob, expected[Ranked(penalized)[0]], 1e-5);
}

TEST(LogprobsTest, AbsentUnlessAsked) {
  const std::vector<float> logits = RandomLogits(100, 1.0f, 37);
  const SampledToken s = Sampler(Params(1.0f)).Sample(logits, {}, {});
  EXPECT_EQ(s.logprob, 0.0f);
  EXPECT_TRUE(s.top.empty());
  SamplingParams p = Params(0.0f);
  p.logprobs = 0;
  const SampledToken chosen_only = Sampler(p).Sample(logits, {}, {});
  EXPECT_NEAR(chosen_only.logprob, LogSoftmax(logits)[Argmax(logits)], 1e-5);
  EXPECT_TRUE(chosen_only.top.empty());
}

}  // namespace
}  // namespace hydra::engine
