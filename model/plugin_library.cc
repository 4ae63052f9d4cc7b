#include "model/plugin_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace hydra::model {

absl::StatusOr<void*> LoadPluginSymbol(const char* what, const char* file_name,
                                       const char* env_var, const char* symbol,
                                       int dlopen_flags) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv(env_var)) candidates.push_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path() / file_name).string());
  candidates.push_back(absl::StrCat(HYDRA_PLUGIN_DIR, "/", file_name));

  std::string tried;
  for (const std::string& path : candidates) {
    if (!std::filesystem::exists(path)) {
      absl::StrAppend(&tried, " ", path, " (missing)");
      continue;
    }
    void* handle = dlopen(path.c_str(), dlopen_flags);
    if (handle == nullptr) {
      absl::StrAppend(&tried, " ", path, " (", dlerror(), ")");
      continue;
    }
    if (void* address = dlsym(handle, symbol)) return address;
    absl::StrAppend(&tried, " ", path, " (no ", symbol, ")");
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot load the ", what, " plugin ", file_name, "; tried:", tried));
}

}  // namespace hydra::model
