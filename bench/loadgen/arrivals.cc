#include "bench/loadgen/arrivals.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace hydra::loadgen {

absl::StatusOr<ArrivalProcess> ArrivalProcess::Create(absl::string_view kind,
                                                      double rate,
                                                      uint64_t seed) {
  if (!(rate > 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--request_rate must be a positive number of requests per second (got ",
        rate, ")"));
  }
  if (kind != "poisson" && kind != "constant") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--arrival must be poisson or constant (got \"", kind, "\")"));
  }
  return ArrivalProcess(kind == "poisson", rate, seed);
}

double ArrivalProcess::NextGapSeconds() {
  return poisson_ ? gap_(rng_) : 1.0 / rate_;
}

}  // namespace hydra::loadgen
