// Server-Sent Events framing for streamed OpenAI responses:
// "data: {json}\n\n" per event, "data: [DONE]\n\n" at the end.
#ifndef HYDRA_SERVER_HTTP_SSE_H_
#define HYDRA_SERVER_HTTP_SSE_H_

#include <string>

#include "nlohmann/json.hpp"

namespace hydra::server::http {

inline constexpr char kSseContentType[] = "text/event-stream";

std::string SseEvent(const nlohmann::ordered_json& data);
std::string SseDone();

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_SSE_H_
