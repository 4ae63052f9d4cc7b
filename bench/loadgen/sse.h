// Server-sent events as a completion stream sends them: a stream of bytes,
// cut anywhere by the network, into the `data` of each event.
#ifndef HYDRA_BENCH_LOADGEN_SSE_H_
#define HYDRA_BENCH_LOADGEN_SSE_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace hydra::loadgen {

class SseParser {
 public:
  using OnData = std::function<void(absl::string_view data)>;

  // Feeds the next bytes; calls `on_data` for every event they complete,
  // with its data lines joined by "\n". Comments (":..."), `event:`, `id:`
  // and `retry:` lines, and events without data are skipped; lines end in
  // "\n", "\r\n" or "\r".
  void Feed(absl::string_view bytes, const OnData& on_data);

  // Bytes of an event not yet complete (the stream ended mid-event).
  bool pending() const { return !line_.empty() || !data_.empty(); }

 private:
  void Line(absl::string_view line, const OnData& on_data);

  std::string line_;  // the incomplete last line
  std::string data_;  // data lines of the event so far
  bool has_data_ = false;
  bool last_was_cr_ = false;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_SSE_H_
