// The load generator's arithmetic and parsing, on known inputs: percentiles,
// rates, arrival processes, length distributions, prompt composition, JSONL
// datasets, request-class mixes, the SLO search and the per-request file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "bench/loadgen/arrivals.h"
#include "bench/loadgen/mix.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/request_record.h"
#include "bench/loadgen/slo_search.h"
#include "bench/loadgen/stats.h"
#include "bench/loadgen/workload.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hydra::loadgen {
namespace {

using ::testing::HasSubstr;

TEST(Stats, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile(range(1, 11), [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91
  const LatencySummary s = Summarize({10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(s.count, 10u);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(s.p50, 5.5);
  EXPECT_DOUBLE_EQ(s.p90, 9.1);
  EXPECT_DOUBLE_EQ(s.p95, 9.55);
  EXPECT_DOUBLE_EQ(s.p99, 9.91);
  EXPECT_DOUBLE_EQ(s.max, 10);
}

TEST(Stats, UnsortedSamplesWithRepeats) {
  // sorted: 1 1 2 3 4 5 6 9; p50 at rank 3.5, p95 at rank 6.65.
  const LatencySummary s = Summarize({3, 1, 4, 1, 5, 9, 2, 6});
  EXPECT_DOUBLE_EQ(s.mean, 31.0 / 8);
  EXPECT_DOUBLE_EQ(s.p50, 3.5);
  EXPECT_NEAR(s.p95, 6 + 0.65 * 3, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile({3, 1, 4, 1, 5, 9, 2, 6}, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile({3, 1, 4, 1, 5, 9, 2, 6}, 100), 9);
}

TEST(Stats, EmptyAndSingle) {
  EXPECT_EQ(Summarize({}).count, 0u);
  EXPECT_DOUBLE_EQ(Summarize({}).p99, 0);
  const LatencySummary one = Summarize({42});
  EXPECT_DOUBLE_EQ(one.p50, 42);
  EXPECT_DOUBLE_EQ(one.p99, 42);
}

RequestRecord Ok(double ttft, double e2e, int in, int out,
                 std::vector<double> itl) {
  RequestRecord r;
  r.ttft_ms = ttft;
  r.e2e_ms = e2e;
  r.input_tokens = in;
  r.output_tokens = out;
  r.itl_ms = std::move(itl);
  r.finish_reason = "length";
  return r;
}

TEST(RunSummary, RatesAndLatenciesCountOnlySuccesses) {
  std::vector<RequestRecord> records = {
      Ok(10, 40, 16, 4, {10, 10, 10}),
      Ok(20, 50, 16, 4, {5, 10, 15}),
      Ok(30, 30, 8, 1, {}),
  };
  RequestRecord failed;
  failed.code = absl::StatusCode::kUnavailable;
  failed.error = "draining";
  failed.e2e_ms = 1;  // fast failures must not flatter the latencies
  records.push_back(failed);
  records.push_back(failed);

  const RunSummary s = SummarizeRun(records, /*duration_s=*/2.0);
  EXPECT_EQ(s.issued, 5);
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.errors.at("UNAVAILABLE"), 2);
  EXPECT_EQ(s.error_examples.at("UNAVAILABLE"), "draining");
  EXPECT_EQ(s.input_tokens, 40);
  EXPECT_EQ(s.output_tokens, 9);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.5);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 4.5);
  EXPECT_DOUBLE_EQ(s.total_tokens_per_s, 24.5);
  EXPECT_DOUBLE_EQ(s.sent_per_s, 0);  // every record started at 0 s
  EXPECT_DOUBLE_EQ(s.ttft_ms.mean, 20);
  EXPECT_DOUBLE_EQ(s.e2e_ms.p50, 40);
  EXPECT_EQ(s.itl_ms.count, 6u);
  EXPECT_DOUBLE_EQ(s.itl_ms.max, 15);
  // TPOT = (e2e - ttft) / (out - 1): 10 and 10; the 1-token request has none.
  EXPECT_EQ(s.tpot_ms.count, 2u);
  EXPECT_DOUBLE_EQ(s.tpot_ms.mean, 10);
}

TEST(Arrivals, ConstantGapsAreExact) {
  absl::StatusOr<ArrivalProcess> a = ArrivalProcess::Create("constant", 4, 1);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int i = 0; i < 10; ++i) EXPECT_DOUBLE_EQ(a->NextGapSeconds(), 0.25);
}

TEST(Arrivals, PoissonGapsHaveTheRateAndUnitVariationCoefficient) {
  absl::StatusOr<ArrivalProcess> a = ArrivalProcess::Create("poisson", 20, 7);
  ASSERT_TRUE(a.ok()) << a.status();
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double g = a->NextGapSeconds();
    ASSERT_GE(g, 0);
    sum += g;
    sum_sq += g * g;
  }
  const double mean = sum / n;
  const double sd = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 1.0 / 20, 0.01 / 20);  // 1%: ~4.5 standard errors
  EXPECT_NEAR(sd / mean, 1.0, 0.02);       // exponential: sd == mean
}

TEST(Arrivals, SameSeedSameSchedule) {
  auto a = ArrivalProcess::Create("poisson", 3, 11);
  auto b = ArrivalProcess::Create("poisson", 3, 11);
  auto c = ArrivalProcess::Create("poisson", 3, 12);
  double da = 0, dc = 0;
  for (int i = 0; i < 5; ++i) {
    da = a->NextGapSeconds();
    EXPECT_DOUBLE_EQ(da, b->NextGapSeconds());
    dc = c->NextGapSeconds();
  }
  EXPECT_NE(da, dc);
}

TEST(Arrivals, BadInputsNameTheFlag) {
  EXPECT_THAT(ArrivalProcess::Create("poisson", 0, 1).status().message(),
              HasSubstr("--request_rate"));
  EXPECT_THAT(ArrivalProcess::Create("bursty", 1, 1).status().message(),
              HasSubstr("--arrival must be poisson or constant"));
}

TEST(LengthDistribution, FixedUniformNormal) {
  std::mt19937_64 rng(3);
  auto fixed = LengthDistribution::Create("input_len", "fixed", 64, 10);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->Sample(rng), 64);
  EXPECT_EQ(fixed->max(), 64);

  auto uniform = LengthDistribution::Create("input_len", "uniform", 50, 10);
  ASSERT_TRUE(uniform.ok());
  std::map<int, int> seen;
  for (int i = 0; i < 20000; ++i) ++seen[uniform->Sample(rng)];
  EXPECT_EQ(seen.begin()->first, 40);
  EXPECT_EQ(seen.rbegin()->first, 60);
  EXPECT_EQ(seen.size(), 21u);
  EXPECT_EQ(uniform->max(), 60);

  auto normal = LengthDistribution::Create("output_len", "normal", 100, 15);
  ASSERT_TRUE(normal.ok());
  double sum = 0, sum_sq = 0;
  const int n = 50000;
  for (int i = 0; i < n; ++i) {
    const int v = normal->Sample(rng);
    ASSERT_LE(v, normal->max());
    sum += v;
    sum_sq += double{1} * v * v;
  }
  EXPECT_NEAR(sum / n, 100, 0.5);
  EXPECT_NEAR(std::sqrt(sum_sq / n - (sum / n) * (sum / n)), 15, 0.5);

  // Draws below the minimum are raised to it.
  auto wide = LengthDistribution::Create("output_len", "normal", 2, 50);
  for (int i = 0; i < 1000; ++i) EXPECT_GE(wide->Sample(rng, 1), 1);
}

TEST(LengthDistribution, BadInputsNameTheFlag) {
  EXPECT_THAT(
      LengthDistribution::Create("input_len", "zipf", 8, 0).status().message(),
      HasSubstr("--input_len_dist must be one of fixed, uniform, normal"));
  EXPECT_THAT(LengthDistribution::Create("output_len", "fixed", 0, 0)
                  .status()
                  .message(),
              HasSubstr("--output_len must be >= 1"));
  EXPECT_THAT(LengthDistribution::Create("output_len", "uniform", 8, -1)
                  .status()
                  .message(),
              HasSubstr("--output_len_spread must be >= 0"));
}

WordCosts FakeCosts() {
  WordCosts c;
  c.words = {"a", "bb", "ccc", "dddd"};
  c.tokens = {1, 2, 3, 4};
  c.prompt_overhead = 1;
  return c;
}

int CostOf(const WordCosts& costs, const std::string& text) {
  std::map<std::string, int> cost;
  for (size_t i = 0; i < costs.words.size(); ++i)
    cost[costs.words[i]] = costs.tokens[i];
  int total = 0;
  for (absl::string_view w : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    total += cost.at(std::string(w));
  }
  return total;
}

TEST(ComposeText, HitsEveryLengthExactly) {
  const WordCosts costs = FakeCosts();
  std::mt19937_64 rng(5);
  for (int tokens = 0; tokens <= 300; ++tokens) {
    EXPECT_EQ(CostOf(costs, ComposeText(costs, tokens, rng)), tokens);
  }
}

TEST(ComposeText, NeedsASingleTokenWord) {
  WordCosts costs = FakeCosts();
  costs.tokens[0] = 2;
  EXPECT_THAT(ValidateWordCosts(costs).message(), HasSubstr("single token"));
  EXPECT_TRUE(ValidateWordCosts(FakeCosts()).ok());
}

SyntheticOptions Options(int input, int output, int prefix) {
  return SyntheticOptions{
      *LengthDistribution::Create("input_len", "fixed", input, 0),
      *LengthDistribution::Create("output_len", "fixed", output, 0), prefix,
      /*seed=*/9};
}

TEST(SyntheticWorkload, ExactLengthsDistinctDeterministicPrompts) {
  auto w = MakeSyntheticWorkload(FakeCosts(), Options(40, 16, 0));
  ASSERT_TRUE(w.ok()) << w.status();
  const Prompt p1 = (*w)->Make(1), p1again = (*w)->Make(1), p2 = (*w)->Make(2);
  EXPECT_EQ(p1.text, p1again.text);
  EXPECT_NE(p1.text, p2.text);
  EXPECT_EQ(p1.expected_input_tokens, 40);
  EXPECT_EQ(CostOf(FakeCosts(), p1.text) + 1, 40);  // + BOS
  EXPECT_EQ(p1.max_tokens, 16);
  EXPECT_EQ((*w)->MaxTotalTokens(), 56);
}

TEST(SyntheticWorkload, SharedPrefixIsPartOfTheInput) {
  auto w = MakeSyntheticWorkload(FakeCosts(), Options(40, 8, 25));
  ASSERT_TRUE(w.ok()) << w.status();
  const Prompt a = (*w)->Make(1), b = (*w)->Make(2);
  EXPECT_EQ(CostOf(FakeCosts(), a.text) + 1, 40);
  EXPECT_EQ(CostOf(FakeCosts(), b.text) + 1, 40);
  // The first 24 word tokens (25 with BOS) are the same words.
  std::string prefix;
  std::vector<std::string> words = absl::StrSplit(a.text, ' ');
  for (const std::string& word : words) {
    if (CostOf(FakeCosts(), prefix) == 24) break;
    prefix += (prefix.empty() ? "" : " ") + word;
  }
  ASSERT_EQ(CostOf(FakeCosts(), prefix), 24);
  EXPECT_EQ(b.text.substr(0, prefix.size() + 1), prefix + " ");
  EXPECT_NE(a.text, b.text);
}

TEST(SyntheticWorkload, RejectsPrefixNotInsideTheInput) {
  EXPECT_THAT(
      MakeSyntheticWorkload(FakeCosts(), Options(40, 8, 40)).status().message(),
      HasSubstr("--shared_prefix_len"));
  EXPECT_THAT(
      MakeSyntheticWorkload(FakeCosts(), Options(1, 8, 0)).status().message(),
      HasSubstr("--input_len must be > 1"));
}

TEST(Mix, ParsesClassesInOrder) {
  auto mix = ParseMix("doc:0.1:1000-2000:32, chat : 0.9 : 16-64 : 64-64");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 2u);
  const RequestClass& doc = (*mix)[0];
  const RequestClass& chat = (*mix)[1];
  EXPECT_EQ(doc.name, "doc");
  EXPECT_DOUBLE_EQ(doc.weight, 0.1);
  EXPECT_EQ(doc.input.min(), 1000);
  EXPECT_EQ(doc.input.max(), 2000);
  EXPECT_EQ(doc.input.ToString(), "1000-2000");
  EXPECT_EQ(doc.output.min(), 32);
  EXPECT_EQ(doc.output.max(), 32);
  EXPECT_EQ(chat.name, "chat");
  EXPECT_DOUBLE_EQ(chat.weight, 0.9);
  EXPECT_EQ(chat.input.min(), 16);
  EXPECT_EQ(chat.input.max(), 64);
  EXPECT_EQ(chat.output.ToString(), "64");  // LO == HI is a fixed length

  // An odd-width range is drawn whole, both ends included.
  std::mt19937_64 rng(5);
  std::map<int, int> seen;
  for (int i = 0; i < 4000; ++i) ++seen[doc.input.Sample(rng)];
  EXPECT_EQ(seen.begin()->first, 1000);
  EXPECT_EQ(seen.rbegin()->first, 2000);
}

TEST(Mix, BadSpecsNameTheFlagTheClassAndTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "it is empty"},
      {"  ", "it is empty"},
      {"doc:0.1:1000-2000", "class 1 (\"doc:0.1:1000-2000\") has 3 fields"},
      {"doc:0.1:8:8:fast", "has 5 fields, not the 4 NAME:WEIGHT:INPUT:OUTPUT"},
      {"doc:0:8:8",
       "class \"doc\": WEIGHT must be a positive number (got "
       "\"0\")"},
      {"doc:-0.5:8:8", "WEIGHT must be a positive number (got \"-0.5\")"},
      {"doc:nan:8:8", "WEIGHT must be a positive number (got \"nan\")"},
      {"doc:inf:8:8", "WEIGHT must be a positive number (got \"inf\")"},
      {"doc:lots:8:8", "WEIGHT must be a positive number (got \"lots\")"},
      {"doc:1:0:8", "class \"doc\": INPUT must be N or LO-HI tokens"},
      {"doc:1:20-10:8",
       "INPUT must be N or LO-HI tokens with 1 <= LO <= HI "
       "<= 1000000 (got \"20-10\")"},
      {"doc:1:8-:8", "INPUT must be N or LO-HI tokens"},
      {"doc:1:8:1-2-3", "OUTPUT must be N or LO-HI tokens"},
      {"doc:1:8:-4", "OUTPUT must be N or LO-HI tokens"},
      {"doc:1:8:2000000", "OUTPUT must be N or LO-HI tokens"},
      {"doc:1:8:8,,chat:1:8:8", "class 2 is empty (a stray comma?)"},
      {"doc:1:8:8,", "class 2 is empty"},
      {"doc:1:8:8,doc:2:8:8", "class \"doc\" appears twice"},
      {":1:8:8", "class 1: NAME \"\" must be letters, digits, '_' or '-'"},
      {"a/b:1:8:8", "NAME \"a/b\" must be"},
  };
  for (const auto& [spec, want] : cases) {
    const absl::StatusOr<std::vector<RequestClass>> mix = ParseMix(spec);
    ASSERT_FALSE(mix.ok()) << spec;
    EXPECT_EQ(mix.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(mix.status().message()),
                ::testing::StartsWith("--mix: "))
        << spec;
    EXPECT_THAT(mix.status().message(), HasSubstr(want)) << spec;
    // Every error shows the grammar, so the fix is at hand.
    EXPECT_THAT(mix.status().message(), HasSubstr("NAME:WEIGHT:INPUT:OUTPUT"));
  }
}

TEST(Mix, ClassDrawsFollowTheWeights) {
  const ClassDraw draw({1, 3, 6});
  std::vector<int> counts(3);
  const int n = 30000;
  for (uint64_t key = 0; key < n; ++key) ++counts[draw.Pick(7, key)];
  // A share's standard deviation is at most sqrt(0.25 / n) ~ 0.003.
  EXPECT_NEAR(counts[0] / double{n}, 0.1, 0.012);
  EXPECT_NEAR(counts[1] / double{n}, 0.3, 0.012);
  EXPECT_NEAR(counts[2] / double{n}, 0.6, 0.012);

  // A single class always wins; a tiny weight still gets its share.
  const ClassDraw one({2.5});
  for (uint64_t key = 0; key < 100; ++key) EXPECT_EQ(one.Pick(1, key), 0u);
  const ClassDraw rare({0.002, 1});
  int rare_count = 0;
  for (uint64_t key = 0; key < 100000; ++key)
    rare_count += rare.Pick(3, key) == 0;
  EXPECT_GT(rare_count, 120);  // expected 200, standard deviation 14
  EXPECT_LT(rare_count, 280);
}

absl::StatusOr<std::unique_ptr<Workload>> Mixed(const std::string& spec,
                                                int prefix = 0,
                                                uint64_t seed = 1) {
  absl::StatusOr<std::vector<RequestClass>> mix = ParseMix(spec);
  if (!mix.ok()) return mix.status();
  return MakeMixedWorkload(FakeCosts(), *std::move(mix), prefix, seed);
}

TEST(Mix, PromptsTakeTheirClassLengthsInTheWeightsShares) {
  auto w = Mixed("doc:1:100-200:32,chat:9:16-24:8");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->ClassNames(), (std::vector<std::string>{"doc", "chat"}));
  EXPECT_EQ((*w)->MaxTotalTokens(), 232);
  EXPECT_THAT((*w)->Describe(),
              HasSubstr("doc 10% (input 100-200, output 32 tokens), chat 90%"));
  std::map<std::string, int> counts;
  const int n = 5000;
  for (uint64_t key = 0; key < n; ++key) {
    const Prompt p = (*w)->Make(key);
    ++counts[p.request_class];
    EXPECT_EQ(CostOf(FakeCosts(), p.text) + 1, p.expected_input_tokens);
    if (p.request_class == "doc") {
      EXPECT_GE(p.expected_input_tokens, 100);
      EXPECT_LE(p.expected_input_tokens, 200);
      EXPECT_EQ(p.max_tokens, 32);
    } else {
      ASSERT_EQ(p.request_class, "chat");
      EXPECT_GE(p.expected_input_tokens, 16);
      EXPECT_LE(p.expected_input_tokens, 24);
      EXPECT_EQ(p.max_tokens, 8);
    }
  }
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_NEAR(counts["doc"] / double{n}, 0.1, 0.02);
}

TEST(Mix, DeterministicInSeedAndKey) {
  auto a = Mixed("doc:1:100-200:32,chat:1:16-24:8", 0, /*seed=*/11);
  auto b = Mixed("doc:1:100-200:32,chat:1:16-24:8", 0, /*seed=*/11);
  auto other = Mixed("doc:1:100-200:32,chat:1:16-24:8", 0, /*seed=*/12);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  int differing_classes = 0;
  for (uint64_t key = 0; key < 64; ++key) {
    const Prompt pa = (*a)->Make(key), pb = (*b)->Make(key);
    EXPECT_EQ(pa.request_class, pb.request_class);
    EXPECT_EQ(pa.text, pb.text);
    EXPECT_EQ(pa.max_tokens, pb.max_tokens);
    EXPECT_EQ((*a)->Make(key).text, pa.text);  // again: no hidden state
    differing_classes += (*other)->Make(key).request_class != pa.request_class;
  }
  // Another seed draws other classes (equal weights: half differ).
  EXPECT_GT(differing_classes, 10);
}

TEST(Mix, SharedPrefixIsCommonToEveryClass) {
  auto w = Mixed("doc:1:60-80:4,chat:1:30-40:4", /*prefix=*/20);
  ASSERT_TRUE(w.ok()) << w.status();
  std::map<std::string, Prompt> first;
  for (uint64_t key = 0; key < 1000 && first.size() < 2; ++key) {
    const Prompt p = (*w)->Make(key);
    first.emplace(p.request_class, p);
  }
  ASSERT_EQ(first.size(), 2u) << "1000 keys drew one class only";
  const std::string& doc = first.at("doc").text;
  const std::string& chat = first.at("chat").text;
  const size_t same =
      std::mismatch(doc.begin(), doc.end(), chat.begin(), chat.end()).first -
      doc.begin();
  EXPECT_GE(CostOf(FakeCosts(), doc.substr(0, doc.rfind(' ', same))), 18);
}

TEST(Mix, RejectsLengthsTheWorkloadCannotMake) {
  EXPECT_THAT(
      Mixed("doc:1:60-80:4,chat:1:20-40:4", /*prefix=*/20).status().message(),
      HasSubstr("--shared_prefix_len must be 0 or in (1, 20), below "
                "the shortest prompt of --mix class \"chat\""));
  EXPECT_THAT(Mixed("doc:1:60:4,tiny:1:1-4:4").status().message(),
              HasSubstr("--mix: class \"tiny\": INPUT must be > 1"));
}

absl::StatusOr<std::vector<DatasetEntry>> Parse(const std::string& text) {
  std::istringstream in(text);
  return ParseDataset(in, "prompts.jsonl");
}

TEST(Dataset, ParsesPromptsAndOptionalMaxTokens) {
  auto entries = Parse(
      "{\"prompt\": \"Once upon a time\", \"max_tokens\": 12}\n"
      "\n"
      "{\"prompt\": \"The dog\"}\n");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].prompt, "Once upon a time");
  EXPECT_EQ((*entries)[0].max_tokens, 12);
  EXPECT_FALSE((*entries)[1].max_tokens.has_value());

  auto w = MakeDatasetWorkload(
      *entries, *LengthDistribution::Create("output_len", "fixed", 7, 0), 1);
  EXPECT_EQ(w->Make(0).max_tokens, 12);
  EXPECT_EQ(w->Make(1).max_tokens, 7);
  EXPECT_EQ(w->Make(2).text, "Once upon a time");  // round robin
}

TEST(Dataset, EveryMalformedLineIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\"",
       "prompts.jsonl:2: not valid JSON"},
      {"[1, 2]", "prompts.jsonl:1: each line must be a JSON object"},
      {"{\"max_tokens\": 3}", "prompts.jsonl:1: field \"prompt\" is missing"},
      {"{\"prompt\": 5}", "field \"prompt\" must be a non-empty string"},
      {"{\"prompt\": \"\"}", "field \"prompt\" must be a non-empty string"},
      {"{\"prompt\": \"a\", \"max_tokens\": 0}",
       "\"max_tokens\" must be an integer"},
      {"{\"prompt\": \"a\", \"max_tokens\": \"8\"}",
       "\"max_tokens\" must be an integer"},
      {"{\"prompt\": \"a\", \"max_tokens\": 1.5}",
       "\"max_tokens\" must be an integer"},
      {"{\"prompt\": \"a\", \"max_token\": 8}",
       "unknown field \"max_token\"; allowed: prompt, max_tokens"},
      {"\n\n", "prompts.jsonl: no prompts"},
  };
  for (const auto& [text, want] : cases) {
    auto entries = Parse(text);
    ASSERT_FALSE(entries.ok()) << text;
    EXPECT_THAT(entries.status().message(), HasSubstr(want)) << text;
  }
  EXPECT_THAT(LoadDataset("/nonexistent/prompts.jsonl").status().message(),
              HasSubstr("--dataset: cannot open"));
}

TEST(SloSearch, FindsTheThresholdWithinTolerance) {
  const double threshold = 37.3;
  int calls = 0;
  auto result = SearchMaxRate(SloSearchOptions{1, 1000, 0.05, 20},
                              [&](double rate) -> absl::StatusOr<bool> {
                                ++calls;
                                return rate <= threshold;
                              });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LE(result->best_rate, threshold);
  EXPECT_GT(result->lowest_failed_rate, threshold);
  EXPECT_LE((result->lowest_failed_rate - result->best_rate) /
                result->lowest_failed_rate,
            0.05);
  EXPECT_EQ(static_cast<int>(result->probes.size()), calls);
  // Doubling 1..64 is 7 runs; bisecting 32..64 to 5% is 5 more.
  EXPECT_LE(calls, 12);
}

TEST(SloSearch, AlwaysPassingStopsAtTheMaximum) {
  auto result =
      SearchMaxRate(SloSearchOptions{1, 10, 0.05, 20},
                    [](double) -> absl::StatusOr<bool> { return true; });
  ASSERT_TRUE(result.ok());
  EXPECT_DOUBLE_EQ(result->best_rate, 10);
  EXPECT_DOUBLE_EQ(result->lowest_failed_rate, 0);
  EXPECT_DOUBLE_EQ(result->probes.back().rate, 10);
}

TEST(SloSearch, NeverPassingLooksBelowTheStartThenGivesUp) {
  auto result =
      SearchMaxRate(SloSearchOptions{4, 100, 0.05, 20},
                    [](double) -> absl::StatusOr<bool> { return false; });
  ASSERT_TRUE(result.ok());
  EXPECT_DOUBLE_EQ(result->best_rate, 0);
  EXPECT_LT(result->lowest_failed_rate, 4.0 / 32);
}

TEST(SloSearch, BelowTheStartRate) {
  auto result =
      SearchMaxRate(SloSearchOptions{8, 100, 0.05, 30},
                    [](double r) -> absl::StatusOr<bool> { return r <= 1.3; });
  ASSERT_TRUE(result.ok());
  EXPECT_LE(result->best_rate, 1.3);
  EXPECT_GT(result->best_rate, 1.3 * 0.94);
}

TEST(SloSearch, ProbeErrorsAndBadOptionsEndIt) {
  auto failing =
      SearchMaxRate(SloSearchOptions{}, [](double) -> absl::StatusOr<bool> {
        return absl::UnavailableError("server gone");
      });
  EXPECT_EQ(failing.status().message(), "server gone");
  EXPECT_THAT(SearchMaxRate(SloSearchOptions{0, 10, 0.05, 5},
                            [](double) -> absl::StatusOr<bool> { return true; })
                  .status()
                  .message(),
              HasSubstr("--slo_start_rate"));
}

TEST(SloSearch, MeetsSloNamesWhatWasMissed) {
  RunSummary s;
  s.completed = 10;
  s.ttft_ms.p95 = 120;
  s.itl_ms.p95 = 30;
  std::string why;
  EXPECT_TRUE(MeetsSlo(s, SloTarget{150, 40, 0}, &why));
  EXPECT_FALSE(MeetsSlo(s, SloTarget{100, 40, 0}, &why));
  EXPECT_THAT(why, HasSubstr("p95 TTFT 120.0 ms > 100 ms"));
  // A server that completes less than 90% of the rate sent falls behind.
  s.sent_per_s = 10;
  s.requests_per_s = 9.5;
  EXPECT_TRUE(MeetsSlo(s, SloTarget{150, 40, 0}, &why));
  s.requests_per_s = 8;
  EXPECT_FALSE(MeetsSlo(s, SloTarget{150, 40, 0}, &why));
  EXPECT_THAT(why, HasSubstr("the queue grows"));
  EXPECT_TRUE(MeetsSlo(s, SloTarget{150, 40, 0, /*min_keep_up=*/0}, &why));
  s.failed = 2;
  EXPECT_FALSE(MeetsSlo(s, SloTarget{150, 40, 0}, &why));
  EXPECT_THAT(why, HasSubstr("2 failed requests"));
}

TEST(Report, RequestsCsvQuotesMessagesAndJsonlKeepsGaps) {
  PhaseResult phase;
  phase.records.push_back(Ok(12.5, 40, 16, 3, {10, 17.5}));
  RequestRecord bad;
  bad.index = 1;
  bad.code = absl::StatusCode::kInvalidArgument;
  bad.error = "prompt: 602 tokens, \"too\" long";
  phase.records.push_back(bad);
  const std::string dir = testing::TempDir();

  ASSERT_TRUE(WriteRequests(dir + "/r.csv", {phase}).ok());
  std::ifstream csv(dir + "/r.csv");
  std::string header, first, second;
  std::getline(csv, header);
  std::getline(csv, first);
  std::getline(csv, second);
  EXPECT_THAT(header, HasSubstr("run,index,start_s,status"));
  EXPECT_THAT(first, HasSubstr(",OK,length,16,0,3,12.5000,"));
  EXPECT_THAT(first, HasSubstr(",10.0000 17.5000,"));
  EXPECT_THAT(second, HasSubstr(",INVALID_ARGUMENT,"));
  EXPECT_THAT(second, HasSubstr("\"prompt: 602 tokens, \"\"too\"\" long\""));

  ASSERT_TRUE(WriteRequests(dir + "/r.jsonl", {phase}).ok());
  std::ifstream jsonl(dir + "/r.jsonl");
  std::getline(jsonl, first);
  const nlohmann::json j = nlohmann::json::parse(first);
  EXPECT_EQ(j["itl_ms"], nlohmann::json::array({10.0, 17.5}));
  EXPECT_EQ(j["output_tokens"], 3);

  EXPECT_THAT(WriteRequests(dir + "/r.txt", {phase}).message(),
              HasSubstr("--requests_out must end in .csv or .jsonl"));
}

RequestRecord OfClass(std::string name, RequestRecord r) {
  r.request_class = std::move(name);
  return r;
}

TEST(RunSummary, PerClassFiguresInTheMixOrder) {
  std::vector<RequestRecord> records = {
      OfClass("chat", Ok(10, 40, 16, 4, {10, 10, 10})),
      OfClass("doc", Ok(200, 260, 900, 3, {30, 30})),
      OfClass("chat", Ok(20, 50, 16, 4, {5, 10, 15})),
      OfClass("doc", Ok(300, 330, 1100, 2, {30})),
      OfClass("chat", Ok(30, 30, 8, 1, {})),
  };
  RequestRecord failed;
  failed.code = absl::StatusCode::kResourceExhausted;
  failed.error = "queue full";
  records.push_back(OfClass("doc", failed));

  const std::vector<ClassSummary> classes =
      SummarizeByClass(records, 2.0, {"doc", "chat", "idle"});
  ASSERT_EQ(classes.size(), 3u);
  EXPECT_EQ(classes[0].name, "doc");
  EXPECT_EQ(classes[1].name, "chat");
  EXPECT_EQ(classes[2].name, "idle");
  const RunSummary& doc = classes[0].summary;
  EXPECT_EQ(doc.issued, 3);
  EXPECT_EQ(doc.completed, 2);
  EXPECT_EQ(doc.failed, 1);
  EXPECT_EQ(doc.errors.at("RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(doc.input_tokens, 2000);
  EXPECT_DOUBLE_EQ(doc.ttft_ms.p50, 250);
  EXPECT_DOUBLE_EQ(doc.ttft_ms.p99, 200 + 0.99 * 100);
  EXPECT_EQ(doc.itl_ms.count, 3u);
  EXPECT_DOUBLE_EQ(doc.e2e_ms.p95, 260 + 0.95 * 70);
  EXPECT_DOUBLE_EQ(doc.requests_per_s, 1.0);  // over the whole run
  const RunSummary& chat = classes[1].summary;
  EXPECT_EQ(chat.completed, 3);
  EXPECT_DOUBLE_EQ(chat.ttft_ms.p50, 20);
  EXPECT_EQ(chat.itl_ms.count, 6u);
  EXPECT_DOUBLE_EQ(chat.itl_ms.max, 15);
  EXPECT_EQ(classes[2].summary.issued, 0);
  EXPECT_EQ(classes[2].summary.ttft_ms.count, 0u);

  // The classes partition the run.
  const RunSummary all = SummarizeRun(records, 2.0);
  int64_t issued = 0, completed = 0, output = 0;
  size_t itl = 0;
  for (const ClassSummary& c : classes) {
    issued += c.summary.issued;
    completed += c.summary.completed;
    output += c.summary.output_tokens;
    itl += c.summary.itl_ms.count;
  }
  EXPECT_EQ(issued, all.issued);
  EXPECT_EQ(completed, all.completed);
  EXPECT_EQ(output, all.output_tokens);
  EXPECT_EQ(itl, all.itl_ms.count);

  // A class the names lack is not dropped.
  const std::vector<ClassSummary> extra = SummarizeByClass(records, 2, {"doc"});
  ASSERT_EQ(extra.size(), 2u);
  EXPECT_EQ(extra[1].name, "chat");
}

TEST(Report, PerClassJsonTableAndRequestColumn) {
  PhaseResult phase;
  phase.records = {OfClass("doc", Ok(200, 260, 900, 3, {30, 30})),
                   OfClass("chat", Ok(10, 40, 16, 4, {10, 10, 10})),
                   OfClass("chat", Ok(20, 50, 16, 4, {5, 10, 15}))};
  phase.records[1].index = 1;
  phase.records[2].index = 2;
  phase.summary = SummarizeRun(phase.records, 1.0);
  phase.classes = SummarizeByClass(phase.records, 1.0, {"doc", "chat"});

  const nlohmann::json j = PhaseJson(phase);
  ASSERT_EQ(j["classes"].size(), 2u);
  EXPECT_EQ(j["classes"][0]["name"], "doc");
  EXPECT_EQ(j["classes"][0]["issued"], 1);
  EXPECT_EQ(j["classes"][1]["completed"], 2);
  EXPECT_DOUBLE_EQ(j["classes"][1]["share"].get<double>(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(j["classes"][1]["ttft_ms"]["p50"].get<double>(), 15);
  EXPECT_DOUBLE_EQ(j["classes"][0]["e2e_ms"]["p99"].get<double>(), 260);
  EXPECT_EQ(j["classes"][1]["itl_ms"]["n"], 6);
  EXPECT_FALSE(PhaseJson(PhaseResult{}).contains("classes"));

  const std::string dir = testing::TempDir();
  std::FILE* table = std::fopen((dir + "/table.txt").c_str(), "w");
  ASSERT_NE(table, nullptr);
  PrintPhase(phase, table);
  std::fclose(table);
  std::ifstream in(dir + "/table.txt");
  const std::string text((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("| class |     ok | failed | TTFT p50 |"));
  EXPECT_THAT(text, HasSubstr("| doc   |      1 |      0 |    200.0 |"));
  EXPECT_THAT(text, HasSubstr("| chat  |      2 |      0 |     15.0 |"));

  ASSERT_TRUE(WriteRequests(dir + "/c.csv", {phase}).ok());
  std::ifstream csv(dir + "/c.csv");
  std::string header, first;
  std::getline(csv, header);
  std::getline(csv, first);
  EXPECT_THAT(header, ::testing::EndsWith(",error,class"));
  EXPECT_THAT(first, ::testing::EndsWith(",,doc"));
  ASSERT_TRUE(WriteRequests(dir + "/c.jsonl", {phase}).ok());
  std::ifstream jsonl(dir + "/c.jsonl");
  std::getline(jsonl, first);
  EXPECT_EQ(nlohmann::json::parse(first)["class"], "doc");
}

}  // namespace
}  // namespace hydra::loadgen
