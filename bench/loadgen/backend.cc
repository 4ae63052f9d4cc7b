#include "bench/loadgen/backend.h"

#include "absl/strings/str_cat.h"

namespace hydra::loadgen {

std::string ServerModel::Describe() const {
  std::string s = absl::StrCat(name, " (", architecture);
  if (max_context > 0) absl::StrAppend(&s, ", context ", max_context);
  if (tensor_parallel_size > 0) {
    absl::StrAppend(&s, ", tensor parallel ", tensor_parallel_size);
  }
  if (kv_capacity_tokens > 0) {
    absl::StrAppend(&s, ", KV capacity ", kv_capacity_tokens, " tokens");
  }
  return absl::StrCat(s, ")");
}

absl::StatusOr<WordCosts> MeasureWordCosts(
    Backend& backend, const std::vector<std::string>& words) {
  if (words.empty()) return absl::InvalidArgumentError("no words to measure");
  WordCosts costs;
  std::vector<int> counts;
  for (const std::string& word : words) {
    absl::StatusOr<int> n = backend.CountPromptTokens(word);
    if (!n.ok()) return n.status();
    counts.push_back(*n);
  }
  absl::StatusOr<int> twice =
      backend.CountPromptTokens(absl::StrCat(words[0], " ", words[0]));
  if (!twice.ok()) return twice.status();
  costs.prompt_overhead = 2 * counts[0] - *twice;
  for (size_t i = 0; i < words.size(); ++i) {
    costs.words.push_back(words[i]);
    costs.tokens.push_back(counts[i] - costs.prompt_overhead);
  }
  return costs;
}

}  // namespace hydra::loadgen
