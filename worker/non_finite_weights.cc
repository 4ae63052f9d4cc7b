#include "worker/non_finite_weights.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace hydra::worker {

void NonFiniteWeights::Add(const std::string& tensor, int64_t count) {
  if (count == 0) return;
  values += count;
  if (!tensors.empty() && tensors.back().first == tensor) {
    tensors.back().second += count;
  } else {
    tensors.emplace_back(tensor, count);
  }
}

int64_t CountNonFinite(std::span<const float> values) {
  int64_t count = 0;
  for (float v : values) count += !std::isfinite(v);
  return count;
}

std::string NonFiniteWeightsWarning(const NonFiniteWeights& non_finite) {
  if (non_finite.values == 0) return "";
  constexpr size_t kNamed = 3;
  const size_t tensors = non_finite.tensors.size();
  std::string names;
  for (size_t i = 0; i < std::min(tensors, kNamed); ++i) {
    absl::StrAppend(&names, i == 0 ? "" : ", ", non_finite.tensors[i].first,
                    " (", non_finite.tensors[i].second, ")");
  }
  if (tensors > kNamed)
    absl::StrAppend(&names, " and ", tensors - kNamed, " more");
  return absl::StrCat("warning: ", non_finite.values,
                      non_finite.values == 1 ? " weight is" : " weights are",
                      " not finite (NaN or Inf) in ", tensors,
                      tensors == 1 ? " tensor: " : " tensors: ", names,
                      "; outputs will be garbage");
}

}  // namespace hydra::worker
