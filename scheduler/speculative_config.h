// The settings of prompt-lookup speculative decoding (docs/architecture.md,
// "Speculative decoding") and their checks, shared by the command-line flags
// and code that builds an engine directly.
#ifndef HYDRA_SCHEDULER_SPECULATIVE_CONFIG_H_
#define HYDRA_SCHEDULER_SPECULATIVE_CONFIG_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hydra::scheduler {

struct SpeculativeConfig {
  static constexpr int kMaxTokens = 16;
  static constexpr int kMaxNgram = 8;
  int num_tokens = 0;  // drafts per decode, at most; 0 = off
  int ngram = 3;       // tokens matched to find them
};

// From --speculative ("none" or "ngram"), --spec_tokens (1..16) and
// --spec_ngram (1..8); the error names the flag and what it allows. With
// "none" the other two are still checked, so a typo is not silently kept.
absl::StatusOr<SpeculativeConfig> ParseSpeculativeConfig(absl::string_view mode,
                                                         int num_tokens,
                                                         int ngram);
// The same ranges for a config built in code (num_tokens 0 = off).
absl::Status CheckSpeculativeConfig(const SpeculativeConfig& config);

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_SPECULATIVE_CONFIG_H_
