#include "scheduler/ngram_proposer.h"

#include <algorithm>

namespace hydra::scheduler {

std::vector<int> ProposeNgramDrafts(std::span<const int> tokens, int ngram,
                                    int max_tokens) {
  const int len = static_cast<int>(tokens.size());
  if (ngram <= 0 || max_tokens <= 0 || len <= ngram) return {};
  const auto suffix = tokens.last(ngram);
  // Scanning backwards finds the most recent occurrence first: the nearest
  // context is the likeliest to continue the same way.
  for (int start = len - ngram - 1; start >= 0; --start) {
    if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) {
      continue;
    }
    const int follow = start + ngram;  // < len: at least one token follows
    const int n = std::min(max_tokens, len - follow);
    return std::vector<int>(tokens.begin() + follow,
                            tokens.begin() + follow + n);
  }
  return {};
}

}  // namespace hydra::scheduler
