// When an open-loop run sends its requests: Poisson arrivals (exponential
// gaps, what independent users produce) or evenly spaced ones.
#ifndef HYDRA_BENCH_LOADGEN_ARRIVALS_H_
#define HYDRA_BENCH_LOADGEN_ARRIVALS_H_

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hydra::loadgen {

class ArrivalProcess {
 public:
  // kind: "poisson" or "constant"; rate in requests per second, > 0.
  static absl::StatusOr<ArrivalProcess> Create(absl::string_view kind,
                                               double rate, uint64_t seed);
  // Seconds from one arrival to the next.
  double NextGapSeconds();
  double rate() const { return rate_; }
  bool poisson() const { return poisson_; }

 private:
  ArrivalProcess(bool poisson, double rate, uint64_t seed)
      : poisson_(poisson), rate_(rate), rng_(seed), gap_(rate) {}
  bool poisson_;
  double rate_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_ARRIVALS_H_
