// The API key check both front ends use: "Bearer <key>" in the
// authorization header, compared in constant time so the time a wrong key
// takes to refuse says nothing about how much of it was right.
#ifndef HYDRA_SERVER_API_KEY_H_
#define HYDRA_SERVER_API_KEY_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace hydra::server {

// True when no key is required (`key` empty) or `authorization` is
// "Bearer <key>".
bool AuthorizationMatches(std::string_view authorization, std::string_view key);

// The key in `path` (a mounted Kubernetes Secret, say), without the trailing
// newline such files usually end with. An empty or unreadable file is an
// error naming the path.
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

}  // namespace hydra::server

#endif  // HYDRA_SERVER_API_KEY_H_
