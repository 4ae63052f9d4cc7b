#include "bench/loadgen/mix.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace hydra::loadgen {
namespace {

constexpr int kMaxLength = 1'000'000;
constexpr uint64_t kClassStream = 3;  // RngFor's stream for the class draw

bool ValidName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-';
  });
}

// "N" or "LO-HI"; nullopt when malformed or out of range.
std::optional<LengthDistribution> ParseLength(absl::string_view text) {
  const std::vector<absl::string_view> ends = absl::StrSplit(text, '-');
  int lo = 0, hi = 0;
  if (ends.size() > 2 || !absl::SimpleAtoi(ends.front(), &lo) ||
      !absl::SimpleAtoi(ends.back(), &hi) || lo < 1 || lo > hi ||
      hi > kMaxLength) {
    return std::nullopt;
  }
  return LengthDistribution::Range(lo, hi);
}

class MixedWorkload final : public Workload {
 public:
  MixedWorkload(std::vector<RequestClass> classes,
                std::vector<std::unique_ptr<Workload>> per_class,
                int shared_prefix_tokens, uint64_t seed)
      : classes_(std::move(classes)),
        per_class_(std::move(per_class)),
        shared_prefix_tokens_(shared_prefix_tokens),
        seed_(seed),
        draw_([this] {
          std::vector<double> weights;
          for (const RequestClass& c : classes_) weights.push_back(c.weight);
          return weights;
        }()) {}

  Prompt Make(uint64_t key) const override {
    const size_t i = draw_.Pick(seed_, key);
    Prompt p = per_class_[i]->Make(key);
    p.request_class = classes_[i].name;
    return p;
  }

  int MaxTotalTokens() const override {
    int most = 0;
    for (const auto& w : per_class_) most = std::max(most, w->MaxTotalTokens());
    return most;
  }

  std::string Describe() const override {
    double total = 0;
    for (const RequestClass& c : classes_) total += c.weight;
    return absl::StrCat(
        "mix: ",
        absl::StrJoin(classes_, ", ",
                      [&](std::string* out, const RequestClass& c) {
                        absl::StrAppendFormat(
                            out, "%s %.3g%% (input %s, output %s tokens)",
                            c.name, 100 * c.weight / total, c.input.ToString(),
                            c.output.ToString());
                      }),
        "; shared prefix ", shared_prefix_tokens_, " tokens");
  }

  std::vector<std::string> ClassNames() const override {
    std::vector<std::string> names;
    for (const RequestClass& c : classes_) names.push_back(c.name);
    return names;
  }

 private:
  std::vector<RequestClass> classes_;
  std::vector<std::unique_ptr<Workload>> per_class_;  // one per class
  int shared_prefix_tokens_;
  uint64_t seed_;
  ClassDraw draw_;
};

}  // namespace

absl::StatusOr<std::vector<RequestClass>> ParseMix(absl::string_view spec) {
  auto error = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mix: ", what, "; expected ", kMixSyntax));
  };
  if (absl::StripAsciiWhitespace(spec).empty()) return error("it is empty");
  std::vector<RequestClass> classes;
  std::set<std::string> names;
  int number = 0;
  for (absl::string_view entry : absl::StrSplit(spec, ',')) {
    ++number;
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return error(
          absl::StrCat("class ", number, " is empty (a stray comma?)"));
    }
    std::vector<absl::string_view> fields = absl::StrSplit(entry, ':');
    for (absl::string_view& f : fields) f = absl::StripAsciiWhitespace(f);
    if (fields.size() != 4) {
      return error(absl::StrFormat(
          "class %d (\"%s\") has %d fields, not the 4 NAME:WEIGHT:INPUT:OUTPUT",
          number, entry, fields.size()));
    }
    const std::string name(fields[0]);
    if (!ValidName(name)) {
      return error(absl::StrFormat(
          "class %d: NAME \"%s\" must be letters, digits, '_' or '-'", number,
          name));
    }
    if (!names.insert(name).second) {
      return error(absl::StrCat("class \"", name, "\" appears twice"));
    }
    double weight = 0;
    if (!absl::SimpleAtod(fields[1], &weight) || !std::isfinite(weight) ||
        !(weight > 0)) {
      return error(absl::StrFormat(
          "class \"%s\": WEIGHT must be a positive number (got \"%s\")", name,
          fields[1]));
    }
    auto length =
        [&](absl::string_view field,
            absl::string_view text) -> absl::StatusOr<LengthDistribution> {
      if (std::optional<LengthDistribution> l = ParseLength(text)) return *l;
      return error(absl::StrFormat(
          "class \"%s\": %s must be N or LO-HI tokens with 1 <= LO <= HI <= "
          "%d (got \"%s\")",
          name, field, kMaxLength, text));
    };
    absl::StatusOr<LengthDistribution> input = length("INPUT", fields[2]);
    if (!input.ok()) return input.status();
    absl::StatusOr<LengthDistribution> output = length("OUTPUT", fields[3]);
    if (!output.ok()) return output.status();
    classes.push_back(RequestClass{name, weight, *input, *output});
  }
  return classes;
}

ClassDraw::ClassDraw(const std::vector<double>& weights) {
  double sum = 0;
  for (double w : weights) cumulative_.push_back(sum += w);
}

size_t ClassDraw::Pick(uint64_t seed, uint64_t key) const {
  std::mt19937_64 rng = RngFor(seed, key, kClassStream);
  const double u =
      std::uniform_real_distribution<double>(0, cumulative_.back())(rng);
  const size_t i = std::upper_bound(cumulative_.begin(), cumulative_.end(), u) -
                   cumulative_.begin();
  return std::min(i, cumulative_.size() - 1);
}

absl::StatusOr<std::unique_ptr<Workload>> MakeMixedWorkload(
    WordCosts costs, std::vector<RequestClass> classes,
    int shared_prefix_tokens, uint64_t seed) {
  if (classes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mix: no classes; expected ", kMixSyntax));
  }
  if (absl::Status s = ValidateWordCosts(costs); !s.ok()) return s;
  const int overhead = costs.prompt_overhead;
  const int p = shared_prefix_tokens;
  for (const RequestClass& c : classes) {
    if (c.input.min() <= overhead) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--mix: class \"%s\": INPUT must be > %d, the tokens the server adds "
          "to any prompt (got %s)",
          c.name, overhead, c.input.ToString()));
    }
    if (p != 0 && (p <= overhead || p >= c.input.min())) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--shared_prefix_len must be 0 or in (%d, %d), below the shortest "
          "prompt of --mix class \"%s\": the prefix is part of the prompt "
          "(got %d)",
          overhead, c.input.min(), c.name, p));
    }
  }
  std::vector<std::unique_ptr<Workload>> per_class;
  for (const RequestClass& c : classes) {
    // The same seed for every class: a key's words depend on the key alone,
    // and the shared prefix is the same text in every class.
    absl::StatusOr<std::unique_ptr<Workload>> w = MakeSyntheticWorkload(
        costs, SyntheticOptions{c.input, c.output, p, seed});
    if (!w.ok()) return w.status();
    per_class.push_back(*std::move(w));
  }
  return std::make_unique<MixedWorkload>(std::move(classes),
                                         std::move(per_class), p, seed);
}

}  // namespace hydra::loadgen
