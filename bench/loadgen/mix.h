// --mix: a workload that is a weighted mix of request classes, each with its
// own prompt and output lengths (say a few long document prompts among many
// short chat turns), so that one run shows how each kind of request fares
// while the others compete with it for the same server.
#ifndef HYDRA_BENCH_LOADGEN_MIX_H_
#define HYDRA_BENCH_LOADGEN_MIX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/loadgen/workload.h"

namespace hydra::loadgen {

struct RequestClass {
  std::string name;
  double weight = 0;          // relative; the weights need not sum to 1
  LengthDistribution input;   // whole prompt, BOS included
  LengthDistribution output;  // max_tokens
};

// The grammar of --mix, for its help text and its errors.
inline constexpr absl::string_view kMixSyntax =
    "NAME:WEIGHT:INPUT:OUTPUT[,NAME:WEIGHT:INPUT:OUTPUT...], lengths N or "
    "LO-HI tokens (e.g. doc:0.1:1000-2000:32,chat:0.9:16-64:64)";

// Parses --mix; every error names the flag, the class and the field.
absl::StatusOr<std::vector<RequestClass>> ParseMix(absl::string_view spec);

// Draws a class index with probability weight / sum of weights, from an RNG
// seeded by (seed, key) alone: request k is the same class in every run
// and on every thread.
class ClassDraw {
 public:
  explicit ClassDraw(const std::vector<double>& weights);
  size_t Pick(uint64_t seed, uint64_t key) const;

 private:
  std::vector<double> cumulative_;
};

// Synthetic prompts (as MakeSyntheticWorkload's) whose lengths come from the
// class each request draws; the shared prefix, if any, is common to all
// classes and must be shorter than every class's shortest prompt.
absl::StatusOr<std::unique_ptr<Workload>> MakeMixedWorkload(
    WordCosts costs, std::vector<RequestClass> classes,
    int shared_prefix_tokens, uint64_t seed);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_MIX_H_
