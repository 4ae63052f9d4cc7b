#include "scheduler/speculative_config.h"

#include "absl/strings/str_cat.h"

namespace hydra::scheduler {
namespace {

absl::Status CheckRange(absl::string_view flag, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, ": must be in [", lo, ", ", hi, "] (got ", value, ")"));
}

}  // namespace

absl::StatusOr<SpeculativeConfig> ParseSpeculativeConfig(absl::string_view mode,
                                                         int num_tokens,
                                                         int ngram) {
  if (mode != "none" && mode != "ngram") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--speculative: must be none or ngram (got \"", mode, "\")"));
  }
  if (absl::Status s = CheckRange("spec_tokens", num_tokens, 1,
                                  SpeculativeConfig::kMaxTokens);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckRange("spec_ngram", ngram, 1, SpeculativeConfig::kMaxNgram);
      !s.ok()) {
    return s;
  }
  SpeculativeConfig config;
  config.num_tokens = mode == "ngram" ? num_tokens : 0;
  config.ngram = ngram;
  return config;
}

absl::Status CheckSpeculativeConfig(const SpeculativeConfig& config) {
  if (absl::Status s = CheckRange("spec_tokens", config.num_tokens, 0,
                                  SpeculativeConfig::kMaxTokens);
      !s.ok()) {
    return s;
  }
  return CheckRange("spec_ngram", config.ngram, 1,
                    SpeculativeConfig::kMaxNgram);
}

}  // namespace hydra::scheduler
