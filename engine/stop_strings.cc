#include "engine/stop_strings.h"

#include <algorithm>
#include <utility>

namespace hydra::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops)
    : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

StopStringMatcher::Result StopStringMatcher::Push(std::string_view delta) {
  held_.append(delta);
  Result result;
  if (stops_.empty()) {
    result.text = std::move(held_);
    held_.clear();
    return result;
  }
  size_t first = std::string::npos;
  for (const std::string& stop : stops_)
    first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    result.text = held_.substr(0, first);
    result.stopped = true;
    held_.clear();
    return result;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, held_.size()); len > keep;
         --len) {
      if (held_.compare(held_.size() - len, len, stop, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopStringMatcher::Flush() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace hydra::engine
