// Exact percentiles over every sample of a run. The load generator keeps all
// samples (a few thousand to a few hundred thousand doubles) instead of a
// histogram, so p99 is a measured value, not a bucket edge.
#ifndef HYDRA_BENCH_LOADGEN_STATS_H_
#define HYDRA_BENCH_LOADGEN_STATS_H_

#include <cstddef>
#include <vector>

namespace hydra::loadgen {

struct LatencySummary {
  size_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

// The p-th percentile (p in [0, 100]) of an ascending vector, interpolating
// linearly between the two nearest ranks (numpy's default and Python's
// statistics.quantiles(method="inclusive")), so that results can be checked
// against other tools' reports of the same samples. 0 for no samples.
double PercentileOfSorted(const std::vector<double>& sorted, double p);

// Summary of `samples` (taken by value: they are sorted).
LatencySummary Summarize(std::vector<double> samples);

// The p-th percentile of unsorted samples, for a live progress line.
double Percentile(std::vector<double> samples, double p);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_STATS_H_
