// Finds and opens libhydra_cuda.so (see cuda_plugin.h).
#include <dlfcn.h>

#include "model/plugin_library.h"
#include "worker/cuda/cuda_plugin.h"

namespace hydra::gpu {

absl::StatusOr<CudaPluginLoad> LoadCudaPlugin() {
  // Loaded once; the runner's code lives in the plugin. RTLD_LOCAL: the
  // plugin's CUDA symbols stay private; its references to hydra's own code
  // resolve against the executable.
  static const absl::StatusOr<void*> entry =
      model::LoadPluginSymbol("CUDA", "libhydra_cuda.so", "HYDRA_CUDA_PLUGIN",
                              "HydraCudaPluginLoad", RTLD_NOW | RTLD_LOCAL);
  if (!entry.ok()) return entry.status();
  static const CudaPluginLoad load =
      reinterpret_cast<CudaPluginLoad (*)()>(*entry)();
  return load;
}

}  // namespace hydra::gpu
