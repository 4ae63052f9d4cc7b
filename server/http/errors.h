// OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}}, and
// the HTTP status each absl::Status code maps to.
#ifndef HYDRA_SERVER_HTTP_ERRORS_H_
#define HYDRA_SERVER_HTTP_ERRORS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace hydra::server::http {

struct ApiError {
  int status = 500;
  std::string message;
  std::string type;   // e.g. invalid_request_error
  std::string param;  // the field at fault; empty: null
  std::string code;   // e.g. model_not_found; empty: null
};

// 400 invalid_request_error naming `param`.
ApiError InvalidField(std::string_view param, std::string_view message);

// INVALID_ARGUMENT → 400, UNAUTHENTICATED → 401, NOT_FOUND → 404,
// RESOURCE_EXHAUSTED → 429, UNAVAILABLE → 503, anything else → 500. The
// param is the part of the message before ": " when it looks like a field
// name (the validator's "field: what" convention).
ApiError FromStatus(const absl::Status& status);

// The status code behind an HTTP error status: the inverse of FromStatus's
// mapping (405, 413, 415 and 431 are bad input, 408 a timeout).
absl::StatusCode StatusCodeOf(const ApiError& error);

// The JSON body of `error`.
std::string ErrorBody(const ApiError& error);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_ERRORS_H_
