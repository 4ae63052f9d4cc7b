#include "bench/loadgen/token_timeline.h"

#include <algorithm>

namespace hydra::loadgen {
namespace {

double Ms(TokenTimeline::Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

void TokenTimeline::Add(Clock::time_point at, int tokens) {
  if (tokens <= 0) return;
  arrivals_.push_back({at, tokens});
  total_ += tokens;
}

void TokenTimeline::SetTotal(int total) {
  if (total < 0 || total == total_) return;
  if (arrivals_.empty()) {
    total_ = total;  // tokens without text: counted, never timed
    return;
  }
  const int n = static_cast<int>(arrivals_.size());
  if (total <= n) {
    // Fewer tokens than messages: the first `total` messages carry one.
    arrivals_.resize(std::max(total, 0));
    for (Arrival& a : arrivals_) a.tokens = 1;
    total_ = total;
    return;
  }
  // One token each, then the rest in proportion to the counts seen.
  const int rest = total - n;
  const double seen = total_;
  std::vector<int> share(n);
  std::vector<std::pair<double, int>> remainders;
  int given = 0;
  for (int i = 0; i < n; ++i) {
    const double exact = rest * (arrivals_[i].tokens / seen);
    share[i] = static_cast<int>(exact);
    given += share[i];
    remainders.push_back({exact - share[i], i});
  }
  std::stable_sort(
      remainders.begin(), remainders.end(),
      [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int k = 0; given < rest; ++k, ++given) ++share[remainders[k % n].second];
  for (int i = 0; i < n; ++i) arrivals_[i].tokens = 1 + share[i];
  total_ = total;
}

void TokenTimeline::Fill(RequestRecord& record) const {
  record.output_tokens = total_;
  record.itl_ms.clear();
  if (arrivals_.empty()) return;
  record.ttft_ms = Ms(arrivals_.front().at - start_);
  record.itl_ms.reserve(std::max(total_ - 1, 0));
  record.itl_ms.insert(record.itl_ms.end(), arrivals_.front().tokens - 1, 0.0);
  for (size_t i = 1; i < arrivals_.size(); ++i) {
    const int k = arrivals_[i].tokens;
    record.itl_ms.insert(record.itl_ms.end(), k,
                         Ms(arrivals_[i].at - arrivals_[i - 1].at) / k);
  }
}

}  // namespace hydra::loadgen
