// What the load generator sends: synthetic prompts of a chosen length in
// tokens (built from real words, so the server's tokenizer sees text), with
// an optional prefix shared by every prompt, or prompts from a JSONL file.
#ifndef HYDRA_BENCH_LOADGEN_WORKLOAD_H_
#define HYDRA_BENCH_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hydra::loadgen {

// A length in tokens: fixed, uniform in [mean - spread, mean + spread] or in
// [lo, hi], or normal with standard deviation `spread`; draws are clamped to
// >= `min`.
class LengthDistribution {
 public:
  // kind: "fixed", "uniform" or "normal". `flag` names the option in errors.
  static absl::StatusOr<LengthDistribution> Create(absl::string_view flag,
                                                   absl::string_view kind,
                                                   int mean, int spread);
  // Uniform in [lo, hi], for --mix's LO-HI (whose parser checks
  // 1 <= lo <= hi): a range of odd width has no integer mean +- spread.
  static LengthDistribution Range(int lo, int hi);
  int Sample(std::mt19937_64& rng, int min = 1) const;
  int mean() const { return mean_; }
  int min() const;  // the smallest value a draw has before Sample's clamp
  int max() const;  // the largest value Sample can return
  std::string ToString() const;

 private:
  enum class Kind { kFixed, kUniform, kNormal, kRange };
  LengthDistribution(Kind kind, int mean, int spread, int lo = 0, int hi = 0)
      : kind_(kind), mean_(mean), spread_(spread), lo_(lo), hi_(hi) {}
  Kind kind_;
  int mean_;
  int spread_;
  int lo_, hi_;  // kRange only
};

// Words and what each costs in tokens, measured once through the server's
// Tokenize call. SentencePiece never merges pieces across a space, so a
// space-separated string of words costs the sum of its words.
struct WordCosts {
  std::vector<std::string> words;
  std::vector<int> tokens;  // tokens[i] for words[i], each >= 1
  int prompt_overhead = 0;  // tokens the server adds to any prompt (BOS)
};

// The built-in vocabulary: common English words of simple stories.
const std::vector<std::string>& BuiltinWords();

// Text of exactly `tokens` tokens (>= 0) by WordCosts, words drawn from rng.
// Needs a 1-token word in `costs`, which Validate checks.
std::string ComposeText(const WordCosts& costs, int tokens,
                        std::mt19937_64& rng);
absl::Status ValidateWordCosts(const WordCosts& costs);

// One line of a JSONL dataset: {"prompt": "...", "max_tokens": 64}.
struct DatasetEntry {
  std::string prompt;
  std::optional<int> max_tokens;
};

// Parses JSONL; `name` (the file name) prefixes every error with its line.
// Blank lines are skipped; unknown fields are errors (a typo would otherwise
// silently fall back to a default).
absl::StatusOr<std::vector<DatasetEntry>> ParseDataset(std::istream& in,
                                                       absl::string_view name);
absl::StatusOr<std::vector<DatasetEntry>> LoadDataset(const std::string& path);

// Seeds a generator for one prompt from the workload seed and the prompt's
// key, so that any thread can make prompt k without shared state. Streams
// keep draws for different purposes apart: 0 a prompt's lengths and words,
// 1 the shared prefix, 2 a dataset prompt's output length, 3 --mix's class.
std::mt19937_64 RngFor(uint64_t seed, uint64_t key, uint64_t stream);

struct Prompt {
  std::string text;
  int max_tokens = 0;
  int expected_input_tokens = 0;  // 0 when unknown (dataset prompts)
  std::string request_class;      // --mix's class; empty without one
};

class Workload {
 public:
  virtual ~Workload() = default;
  // The `key`-th prompt. Deterministic in `key`, and distinct keys give
  // distinct prompts, so no two requests of a run share a cached prefix
  // unless asked to.
  virtual Prompt Make(uint64_t key) const = 0;
  // The largest prompt + output the workload can ask for, in tokens (0:
  // unknown, the server will judge).
  virtual int MaxTotalTokens() const = 0;
  virtual std::string Describe() const = 0;
  // The request classes Make draws from, in the order reports list them;
  // empty for a workload of one kind of request.
  virtual std::vector<std::string> ClassNames() const { return {}; }
};

struct SyntheticOptions {
  LengthDistribution input;      // whole prompt, BOS included
  LengthDistribution output;     // max_tokens
  int shared_prefix_tokens = 0;  // the first N prompt tokens, shared by all
  uint64_t seed = 0;
};

absl::StatusOr<std::unique_ptr<Workload>> MakeSyntheticWorkload(
    WordCosts costs, SyntheticOptions options);
// Entries are used in file order, round robin; max_tokens falls back to a
// draw from `output`.
std::unique_ptr<Workload> MakeDatasetWorkload(std::vector<DatasetEntry> entries,
                                              LengthDistribution output,
                                              uint64_t seed);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_WORKLOAD_H_
