#include "model/sentencepiece_model.h"

#include <dlfcn.h>

#include <string>

#include "model/plugin_library.h"

namespace hydra::model {

using Factory = SentencePieceBackend* (*)();

std::unique_ptr<SentencePieceBackend> NewSentencePieceBackend(
    std::string* error) {
  // Loaded once: backends may be created at any time.
  static const absl::StatusOr<void*> factory = LoadPluginSymbol(
      "SentencePiece", "libhydra_sentencepiece.so",
      "HYDRA_SENTENCEPIECE_PLUGIN", "HydraNewSentencePieceBackend",
      RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!factory.ok()) {
    *error = std::string(factory.status().message());
    return nullptr;
  }
  return std::unique_ptr<SentencePieceBackend>(
      reinterpret_cast<Factory>(*factory)());
}

}  // namespace hydra::model
