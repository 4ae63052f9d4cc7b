#include "model/sentencepiece_model.h"

#include <dlfcn.h>

#include <string>

#include "model/plugin_library.h"

namespace hydra::model {

using Factory = SentencePieceBackend* (*)();

// ASan's runtime aborts on a dlopen with RTLD_DEEPBIND (the plugin would
// bind its own malloc and free, past the sanitizer's). Sanitizer builds
// (HYDRA_SANITIZE) load the plugin without it; SentencePiece then works only
// in a process that does not also hold the system libprotobuf (its version
// check fails), which is true of the fuzz targets and tests that use it.
#ifdef HYDRA_PLUGIN_NO_DEEPBIND
constexpr int kDeepBind = 0;
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif

std::unique_ptr<SentencePieceBackend> NewSentencePieceBackend(
    std::string* error) {
  // Loaded once: backends may be created at any time.
  static const absl::StatusOr<void*> factory = LoadPluginSymbol(
      "SentencePiece", "libhydra_sentencepiece.so",
      "HYDRA_SENTENCEPIECE_PLUGIN", "HydraNewSentencePieceBackend",
      RTLD_NOW | RTLD_LOCAL | kDeepBind);
  if (!factory.ok()) {
    *error = std::string(factory.status().message());
    return nullptr;
  }
  return std::unique_ptr<SentencePieceBackend>(
      reinterpret_cast<Factory>(*factory)());
}

}  // namespace hydra::model
