#include "server/http/sse.h"

#include "server/http/json_util.h"

namespace hydra::server::http {

std::string SseEvent(const nlohmann::ordered_json& data) {
  // Compact JSON has no newlines, so one data line carries the event.
  std::string out = "data: ";
  out += Dump(data);
  out += "\n\n";
  return out;
}

std::string SseDone() { return "data: [DONE]\n\n"; }

}  // namespace hydra::server::http
