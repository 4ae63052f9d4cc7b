// Reads a whole file into memory, with every failure as a Status that names
// the path and the reason: not found, not a regular file (a directory where a
// file belongs), unreadable. No exception escapes.
#ifndef HYDRA_COMMON_READ_FILE_H_
#define HYDRA_COMMON_READ_FILE_H_

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace hydra {

// OK when `path` names a regular file (symlinks followed).
inline absl::Status CheckRegularFile(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": file not found"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a regular file (",
                     std::filesystem::is_directory(status) ? "a directory"
                                                           : "a special file",
                     ")"));
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  if (absl::Status s = CheckRegularFile(path); !s.ok()) return s;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(
        absl::StrCat(path.string(), ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path.string(), ": read failed"));
  }
  return std::move(text).str();
}

}  // namespace hydra

#endif  // HYDRA_COMMON_READ_FILE_H_
