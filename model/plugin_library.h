// Opens a plugin library (a .so built with hydra and loaded at run time) and
// returns one of its symbols. Used for libraries that must not be linked
// into the executable: SentencePiece (its bundled protobuf) and the CUDA
// backend (its thread-local storage).
#ifndef HYDRA_MODEL_PLUGIN_LIBRARY_H_
#define HYDRA_MODEL_PLUGIN_LIBRARY_H_

#include "absl/status/statusor.h"

namespace hydra::model {

// Tries, in order, $`env_var`, `file_name` next to the running binary, and
// `file_name` where this build puts plugins; returns `symbol` of the first
// that opens with `dlopen_flags` and exports it. The handle is never closed:
// the plugin's code lives as long as the process. The error names `what`
// and every path tried.
absl::StatusOr<void*> LoadPluginSymbol(const char* what, const char* file_name,
                                       const char* env_var, const char* symbol,
                                       int dlopen_flags);

}  // namespace hydra::model

#endif  // HYDRA_MODEL_PLUGIN_LIBRARY_H_
