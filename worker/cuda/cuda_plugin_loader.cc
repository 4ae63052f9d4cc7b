// Finds and opens libhydra_cuda.so (see cuda_plugin.h).
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/cuda/cuda_plugin.h"

namespace hydra::gpu {
namespace {

constexpr char kPluginName[] = "libhydra_cuda.so";

std::vector<std::string> Candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("HYDRA_CUDA_PLUGIN")) paths.push_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / kPluginName).string());
  paths.push_back(std::string(HYDRA_PLUGIN_DIR) + "/" + kPluginName);
  return paths;
}

}  // namespace

absl::StatusOr<CudaPluginLoad> LoadCudaPlugin() {
  // The handle lives for the process: the runner's code is in it.
  static CudaPluginLoad load = nullptr;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : Candidates()) {
      if (!std::filesystem::exists(path)) {
        absl::StrAppend(&tried, " ", path, " (missing)");
        continue;
      }
      // RTLD_LOCAL: the plugin's CUDA symbols stay private; its references
      // to hydra's own code resolve against the executable.
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        absl::StrAppend(&tried, " ", path, " (", dlerror(), ")");
        continue;
      }
      auto entry = reinterpret_cast<CudaPluginLoad (*)()>(
          dlsym(handle, "HydraCudaPluginLoad"));
      if (entry != nullptr) {
        load = entry();
        return;
      }
      absl::StrAppend(&tried, " ", path, " (no HydraCudaPluginLoad)");
    }
    error = absl::StrCat("cannot load the CUDA plugin ", kPluginName,
                         "; tried:", tried);
  });
  if (load == nullptr) return absl::FailedPreconditionError(error);
  return load;
}

}  // namespace hydra::gpu
