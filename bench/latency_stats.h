// Exact percentiles over every sample of a run. The load generator keeps all
// samples (a few thousand to a few hundred thousand doubles) instead of a
// histogram, so p99 is a measured value, not a bucket edge.
#ifndef HYDRA_BENCH_LATENCY_STATS_H_
#define HYDRA_BENCH_LATENCY_STATS_H_

#include <algorithm>
#include <cmath>
#include <vector>

namespace hydra::bench {

struct LatencySummary {
  size_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

// The p-th percentile (p in [0, 100]) of an ascending vector, interpolating
// linearly between the two nearest ranks (numpy's default), so that results
// can be checked against other tools' reports of the same samples.
inline double PercentileOfSorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] +
         (rank - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Sorts `samples` in place.
inline LatencySummary Summarize(std::vector<double>& samples) {
  LatencySummary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (double v : samples) sum += v;
  s.mean = sum / static_cast<double>(samples.size());
  s.p50 = PercentileOfSorted(samples, 50);
  s.p95 = PercentileOfSorted(samples, 95);
  s.p99 = PercentileOfSorted(samples, 99);
  s.max = samples.back();
  return s;
}

}  // namespace hydra::bench

#endif  // HYDRA_BENCH_LATENCY_STATS_H_
