// JSON helpers shared by the HTTP front end.
#ifndef HYDRA_SERVER_HTTP_JSON_UTIL_H_
#define HYDRA_SERVER_HTTP_JSON_UTIL_H_

#include <string>

#include "nlohmann/json.hpp"

namespace hydra::server::http {

// Compact text; invalid UTF-8 (a lone byte token's text) becomes U+FFFD
// instead of throwing.
inline std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_JSON_UTIL_H_
