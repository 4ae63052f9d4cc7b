#include "server/api_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/read_file.h"
#include "common/status_macros.h"

namespace hydra::server {

bool AuthorizationMatches(std::string_view authorization,
                          std::string_view key) {
  if (key.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (!authorization.starts_with(kScheme)) return false;
  const std::string_view given = authorization.substr(kScheme.size());
  // Every byte of the key is looked at whatever `given` holds; only the
  // length may differ in time.
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    diff |= static_cast<unsigned char>(g ^ key[i]);
  }
  return diff == 0;
}

absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string key, ReadFile(path));
  const absl::string_view trimmed = absl::StripTrailingAsciiWhitespace(key);
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--api_key_file: ", path, " is empty"));
  }
  if (trimmed.find_first_of(" \t\r\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--api_key_file: ", path,
                     " holds whitespace inside the key; it must hold one key"));
  }
  return std::string(trimmed);
}

}  // namespace hydra::server
