#include "bench/loadgen/sse.h"

#include "absl/strings/strip.h"

namespace hydra::loadgen {

void SseParser::Feed(absl::string_view bytes, const OnData& on_data) {
  for (const char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the "\n" of a "\r\n"
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      Line(line_, on_data);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
}

void SseParser::Line(absl::string_view line, const OnData& on_data) {
  if (line.empty()) {  // the end of an event
    if (has_data_) on_data(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // a comment (keep-alive)
  absl::string_view field = line;
  absl::string_view value;
  if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    absl::ConsumePrefix(&value, " ");
  }
  if (field != "data") return;
  if (has_data_) data_.push_back('\n');
  data_.append(value.data(), value.size());
  has_data_ = true;
}

}  // namespace hydra::loadgen
