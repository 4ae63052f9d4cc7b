#include "server/http/errors.h"

#include "nlohmann/json.hpp"
#include "server/http/json_util.h"

namespace hydra::server::http {
namespace {

// "temperature", "stop[1]", "messages[0].content[2].type": a field path.
bool LooksLikeFieldPath(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                    c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

std::string_view TypeFor(int status) {
  switch (status) {
    case 400:
    case 404:
    case 405:
    case 408:
    case 413:
    case 415:
    case 431:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return "server_error";
  }
}

}  // namespace

ApiError InvalidField(std::string_view param, std::string_view message) {
  return ApiError{400, std::string(message), "invalid_request_error",
                  std::string(param), ""};
}

ApiError FromStatus(const absl::Status& status) {
  ApiError e;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      e.status = 400;
      break;
    case absl::StatusCode::kUnauthenticated:
      e.status = 401;
      break;
    case absl::StatusCode::kNotFound:
      e.status = 404;
      break;
    case absl::StatusCode::kResourceExhausted:
      e.status = 429;
      break;
    case absl::StatusCode::kUnavailable:
      e.status = 503;
      break;
    default:
      e.status = 500;
  }
  e.message = std::string(status.message());
  e.type = std::string(TypeFor(e.status));
  if (e.status == 400) {
    const size_t colon = e.message.find(": ");
    if (colon != std::string::npos &&
        LooksLikeFieldPath(std::string_view(e.message).substr(0, colon))) {
      e.param = e.message.substr(0, colon);
    }
  }
  return e;
}

absl::StatusCode StatusCodeOf(const ApiError& error) {
  switch (error.status) {
    case 400:
    case 405:
    case 413:
    case 415:
    case 431:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::string ErrorBody(const ApiError& error) {
  nlohmann::ordered_json j;
  j["error"]["message"] = error.message;
  j["error"]["type"] =
      error.type.empty() ? std::string(TypeFor(error.status)) : error.type;
  j["error"]["param"] = error.param.empty()
                            ? nlohmann::ordered_json()
                            : nlohmann::ordered_json(error.param);
  j["error"]["code"] = error.code.empty() ? nlohmann::ordered_json(error.status)
                                          : nlohmann::ordered_json(error.code);
  return Dump(j);
}

}  // namespace hydra::server::http
