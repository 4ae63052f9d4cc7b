#include "bench/loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace hydra::loadgen {

std::mt19937_64 RngFor(uint64_t seed, uint64_t key, uint64_t stream) {
  std::seed_seq seq{
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
      static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32),
      static_cast<uint32_t>(stream)};
  return std::mt19937_64(seq);
}

namespace {

class SyntheticWorkload final : public Workload {
 public:
  SyntheticWorkload(WordCosts costs, SyntheticOptions options)
      : costs_(std::move(costs)), options_(std::move(options)) {
    if (options_.shared_prefix_tokens > 0) {
      std::mt19937_64 rng = RngFor(options_.seed, 0, /*stream=*/1);
      prefix_ = ComposeText(
          costs_, options_.shared_prefix_tokens - costs_.prompt_overhead, rng);
    }
  }

  Prompt Make(uint64_t key) const override {
    std::mt19937_64 rng = RngFor(options_.seed, key, /*stream=*/0);
    const int min_input =
        std::max(options_.shared_prefix_tokens, costs_.prompt_overhead) + 1;
    Prompt p;
    p.expected_input_tokens = options_.input.Sample(rng, min_input);
    p.max_tokens = options_.output.Sample(rng);
    const int own_tokens =
        p.expected_input_tokens -
        std::max(options_.shared_prefix_tokens, costs_.prompt_overhead);
    const std::string own = ComposeText(costs_, own_tokens, rng);
    p.text = prefix_.empty() ? own : absl::StrCat(prefix_, " ", own);
    return p;
  }

  int MaxTotalTokens() const override {
    return std::max(options_.input.max(), options_.shared_prefix_tokens + 1) +
           options_.output.max();
  }

  std::string Describe() const override {
    return absl::StrCat("synthetic: input ", options_.input.ToString(),
                        " tokens, output ", options_.output.ToString(),
                        " tokens, shared prefix ",
                        options_.shared_prefix_tokens, " tokens");
  }

 private:
  WordCosts costs_;
  SyntheticOptions options_;
  std::string prefix_;
};

class DatasetWorkload final : public Workload {
 public:
  DatasetWorkload(std::vector<DatasetEntry> entries, LengthDistribution output,
                  uint64_t seed)
      : entries_(std::move(entries)), output_(output), seed_(seed) {}

  Prompt Make(uint64_t key) const override {
    const DatasetEntry& e = entries_[key % entries_.size()];
    Prompt p;
    p.text = e.prompt;
    if (e.max_tokens) {
      p.max_tokens = *e.max_tokens;
    } else {
      std::mt19937_64 rng = RngFor(seed_, key, /*stream=*/2);
      p.max_tokens = output_.Sample(rng);
    }
    return p;
  }

  int MaxTotalTokens() const override { return 0; }

  std::string Describe() const override {
    return absl::StrCat("dataset: ", entries_.size(),
                        " prompts, default output ", output_.ToString(),
                        " tokens");
  }

 private:
  std::vector<DatasetEntry> entries_;
  LengthDistribution output_;
  uint64_t seed_;
};

}  // namespace

absl::StatusOr<LengthDistribution> LengthDistribution::Create(
    absl::string_view flag, absl::string_view kind, int mean, int spread) {
  if (mean < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be >= 1 (got ", mean, ")"));
  }
  if (spread < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "_spread must be >= 0 (got ", spread, ")"));
  }
  if (kind == "fixed") return LengthDistribution(Kind::kFixed, mean, 0);
  if (kind == "uniform")
    return LengthDistribution(Kind::kUniform, mean, spread);
  if (kind == "normal") return LengthDistribution(Kind::kNormal, mean, spread);
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "_dist must be one of fixed, uniform, normal (got \"", kind,
      "\")"));
}

LengthDistribution LengthDistribution::Range(int lo, int hi) {
  if (lo == hi) return LengthDistribution(Kind::kFixed, lo, 0);
  return LengthDistribution(Kind::kRange, lo + (hi - lo) / 2, 0, lo, hi);
}

int LengthDistribution::Sample(std::mt19937_64& rng, int min) const {
  int v = mean_;
  switch (kind_) {
    case Kind::kFixed:
      break;
    case Kind::kUniform:
      v = std::uniform_int_distribution<int>(mean_ - spread_,
                                             mean_ + spread_)(rng);
      break;
    case Kind::kNormal:
      // Truncated at 4 standard deviations so that max() is a real bound.
      v = static_cast<int>(std::lround(
          std::clamp(std::normal_distribution<double>(mean_, spread_)(rng),
                     mean_ - 4.0 * spread_, mean_ + 4.0 * spread_)));
      break;
    case Kind::kRange:
      v = std::uniform_int_distribution<int>(lo_, hi_)(rng);
      break;
  }
  return std::max(v, min);
}

int LengthDistribution::min() const {
  switch (kind_) {
    case Kind::kFixed:
      return mean_;
    case Kind::kUniform:
      return mean_ - spread_;
    case Kind::kNormal:
      return mean_ - 4 * spread_;
    case Kind::kRange:
      return lo_;
  }
  return mean_;
}

int LengthDistribution::max() const {
  switch (kind_) {
    case Kind::kFixed:
      return mean_;
    case Kind::kUniform:
      return mean_ + spread_;
    case Kind::kNormal:
      return mean_ + 4 * spread_;
    case Kind::kRange:
      return hi_;
  }
  return mean_;
}

std::string LengthDistribution::ToString() const {
  switch (kind_) {
    case Kind::kFixed:
      return absl::StrCat(mean_);
    case Kind::kUniform:
      return absl::StrCat("uniform ", mean_, "±", spread_);
    case Kind::kNormal:
      return absl::StrCat("normal ", mean_, " sd ", spread_);
    case Kind::kRange:
      return absl::StrCat(lo_, "-", hi_);
  }
  return "";
}

const std::vector<std::string>& BuiltinWords() {
  static const auto* words = new std::vector<std::string>{
      "the",   "a",       "little", "girl",   "boy",    "dog",    "cat",
      "bird",  "tree",    "house",  "garden", "park",   "ball",   "toy",
      "red",   "blue",    "green",  "big",    "small",  "happy",  "sad",
      "sun",   "moon",    "star",   "sky",    "water",  "fish",   "boat",
      "day",   "night",   "friend", "mom",    "dad",    "play",   "run",
      "jump",  "walk",    "look",   "see",    "find",   "give",   "take",
      "make",  "help",    "want",   "like",   "love",   "said",   "went",
      "came",  "saw",     "was",    "had",    "and",    "then",   "but",
      "so",    "with",    "to",     "in",     "on",     "of",     "for",
      "up",    "down",    "out",    "over",   "under",  "very",   "too",
      "all",   "one",     "two",    "three",  "time",   "once",   "upon",
      "there", "they",    "she",    "he",     "it",     "we",     "you",
      "her",   "his",     "their",  "new",    "old",    "good",   "nice",
      "kind",  "funny",   "brave",  "wise",   "quiet",  "loud",   "fast",
      "slow",  "warm",    "cold",   "soft",   "hard",   "bright", "dark",
      "apple", "cake",    "milk",   "bread",  "flower", "grass",  "rock",
      "hill",  "river",   "road",   "car",    "train",  "book",   "box",
      "hat",   "shoe",    "door",   "window", "bed",    "chair",  "table",
      "cup",   "spoon",   "song",   "game",   "story",  "school", "teacher",
      "bear",  "rabbit",  "duck",   "frog",   "lion",   "mouse",  "horse",
      "smile", "laugh",   "cry",    "sing",   "dance",  "read",   "draw",
      "eat",   "drink",   "sleep",  "wake",   "open",   "close",  "hold",
      "share", "learn",   "think",  "know",   "feel",   "hear",   "call",
      "tell",  "ask",     "try",    "stop",   "wait",   "come",   "go",
      "home",  "morning", "rain",   "snow",   "wind",   "cloud",  "light"};
  return *words;
}

absl::Status ValidateWordCosts(const WordCosts& costs) {
  if (costs.words.empty() || costs.words.size() != costs.tokens.size()) {
    return absl::InvalidArgumentError(
        "word costs: no words, or a count per word missing");
  }
  bool has_single = false;
  for (size_t i = 0; i < costs.tokens.size(); ++i) {
    if (costs.tokens[i] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("word costs: \"", costs.words[i], "\" costs ",
                       costs.tokens[i], " tokens; every word must cost >= 1"));
    }
    has_single = has_single || costs.tokens[i] == 1;
  }
  if (!has_single) {
    return absl::InvalidArgumentError(
        "word costs: no word is a single token, so exact lengths cannot be "
        "composed");
  }
  return absl::OkStatus();
}

std::string ComposeText(const WordCosts& costs, int tokens,
                        std::mt19937_64& rng) {
  std::vector<size_t> single;
  for (size_t i = 0; i < costs.tokens.size(); ++i) {
    if (costs.tokens[i] == 1) single.push_back(i);
  }
  std::string text;
  std::uniform_int_distribution<size_t> any(0, costs.words.size() - 1);
  std::uniform_int_distribution<size_t> one(0, single.size() - 1);
  for (int left = tokens; left > 0;) {
    size_t w = any(rng);
    // A word too long for what is left gives way to a 1-token word, so the
    // total is exact.
    if (costs.tokens[w] > left) w = single[one(rng)];
    if (!text.empty()) text += ' ';
    text += costs.words[w];
    left -= costs.tokens[w];
  }
  return text;
}

absl::StatusOr<std::vector<DatasetEntry>> ParseDataset(std::istream& in,
                                                       absl::string_view name) {
  std::vector<DatasetEntry> entries;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", number, ": ", what));
    };
    const nlohmann::json j = nlohmann::json::parse(line, nullptr,
                                                   /*allow_exceptions=*/false);
    if (j.is_discarded()) return error("not valid JSON");
    if (!j.is_object()) {
      return error(
          "each line must be a JSON object like {\"prompt\": \"...\"}");
    }
    DatasetEntry e;
    for (const auto& [key, value] : j.items()) {
      if (key == "prompt") {
        if (!value.is_string() || value.get<std::string>().empty()) {
          return error("field \"prompt\" must be a non-empty string");
        }
        e.prompt = value.get<std::string>();
      } else if (key == "max_tokens") {
        if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
            value.get<int64_t>() > 1'000'000) {
          return error(
              "field \"max_tokens\" must be an integer in [1, 1000000]");
        }
        e.max_tokens = value.get<int>();
      } else {
        return error(absl::StrCat("unknown field \"", key,
                                  "\"; allowed: prompt, max_tokens"));
      }
    }
    if (e.prompt.empty()) return error("field \"prompt\" is missing");
    entries.push_back(std::move(e));
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no prompts (expected one JSON object per line)"));
  }
  return entries;
}

absl::StatusOr<std::vector<DatasetEntry>> LoadDataset(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("--dataset: cannot open ", path));
  }
  return ParseDataset(in, path);
}

absl::StatusOr<std::unique_ptr<Workload>> MakeSyntheticWorkload(
    WordCosts costs, SyntheticOptions options) {
  if (absl::Status s = ValidateWordCosts(costs); !s.ok()) return s;
  const int p = options.shared_prefix_tokens;
  if (p != 0 && (p <= costs.prompt_overhead || p >= options.input.mean())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--shared_prefix_len must be 0 or in (%d, --input_len = %d): the "
        "prefix is part of the prompt (got %d)",
        costs.prompt_overhead, options.input.mean(), p));
  }
  if (options.input.mean() <= costs.prompt_overhead) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--input_len must be > %d, the tokens the server adds to any prompt "
        "(got %d)",
        costs.prompt_overhead, options.input.mean()));
  }
  return std::make_unique<SyntheticWorkload>(std::move(costs),
                                             std::move(options));
}

std::unique_ptr<Workload> MakeDatasetWorkload(std::vector<DatasetEntry> entries,
                                              LengthDistribution output,
                                              uint64_t seed) {
  return std::make_unique<DatasetWorkload>(std::move(entries), output, seed);
}

}  // namespace hydra::loadgen
