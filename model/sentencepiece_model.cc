#include "model/sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace hydra::model {
namespace {

constexpr char kPluginName[] = "libhydra_sentencepiece.so";

using Factory = SentencePieceBackend* (*)();

// Where the plugin may be: $HYDRA_SENTENCEPIECE_PLUGIN, next to the running
// binary, or where this build put it.
std::vector<std::string> Candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("HYDRA_SENTENCEPIECE_PLUGIN"))
    paths.push_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / kPluginName).string());
  paths.push_back(std::string(HYDRA_PLUGIN_DIR) + "/" + kPluginName);
  return paths;
}

}  // namespace

std::unique_ptr<SentencePieceBackend> NewSentencePieceBackend(
    std::string* error) {
  // The handle lives for the process: backends may be created at any time.
  static Factory factory = nullptr;
  static std::string load_error;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : Candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += " " + path + " (missing)";
        continue;
      }
      void* handle =
          dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle == nullptr) {
        tried += " " + path + " (" + dlerror() + ")";
        continue;
      }
      factory = reinterpret_cast<Factory>(
          dlsym(handle, "HydraNewSentencePieceBackend"));
      if (factory != nullptr) return;
      tried += " " + path + " (no HydraNewSentencePieceBackend)";
    }
    load_error = "cannot load the SentencePiece plugin " +
                 std::string(kPluginName) + "; tried:" + tried;
  });
  if (factory == nullptr) {
    *error = load_error;
    return nullptr;
  }
  return std::unique_ptr<SentencePieceBackend>(factory());
}

}  // namespace hydra::model
