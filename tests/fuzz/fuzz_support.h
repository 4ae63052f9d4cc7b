// What the fuzz targets share: a property check that stops the run (a
// finding, like a sanitizer report), a scratch file for loaders that read a
// path, and the small model (tests/fuzz/data) that request validation runs
// against.
#ifndef HYDRA_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define HYDRA_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "model/config.h"
#include "model/tokenizer.h"

namespace hydra::fuzz {

// Aborts with the broken property, so that libFuzzer saves the input.
#define HYDRA_FUZZ_CHECK(condition, ...)                                       \
  do {                                                                         \
    if (!(condition)) {                                                        \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
                   #condition);                                                \
      ::hydra::fuzz::Explain(__VA_ARGS__);                                     \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

inline void Explain() {}
inline void Explain(std::string_view what) {
  std::fprintf(stderr, "  %.*s\n", static_cast<int>(what.size()), what.data());
}
inline void Explain(const absl::Status& status) { Explain(status.ToString()); }

// Dies with `what` when a fixture the target needs cannot be loaded: a run
// without it would test nothing.
[[noreturn]] inline void Fatal(std::string_view what) {
  std::fprintf(stderr, "fuzz target set-up failed: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::exit(2);
}

// A folder of this process's own under $TMPDIR, removed at exit.
inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path* dir = [] {
    auto* path =
        new std::filesystem::path(std::filesystem::temp_directory_path() /
                                  ("hydra-fuzz-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*path);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return path;
  }();
  return *dir;
}

// Writes the input to ScratchDir()/`name` and returns its path.
inline std::filesystem::path WriteScratch(std::string_view name,
                                          const uint8_t* data, size_t size) {
  const std::filesystem::path path = ScratchDir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data),
            static_cast<std::streamsize>(size));
  out.close();
  if (!out) Fatal("cannot write " + path.string());
  return path;
}

// tests/fuzz/data: a tiny Llama config (vocab 259) and the byte-level BPE
// tokenizer.json it goes with (256 bytes, two merges, one added token).
struct SmallModel {
  model::ModelConfig config;
  std::unique_ptr<model::Tokenizer> tokenizer;
  int max_model_len = 0;
};
inline const SmallModel& LoadSmallModel() {
  static const SmallModel* small = [] {
    const std::filesystem::path dir = HYDRA_FUZZ_DATA_DIR;
    auto config = model::LoadModelConfig(dir);
    if (!config.ok()) Fatal(config.status().ToString());
    auto tokenizer = model::Tokenizer::Load(dir / "tokenizer.json");
    if (!tokenizer.ok()) Fatal(tokenizer.status().ToString());
    auto* model = new SmallModel{*std::move(config), *std::move(tokenizer)};
    model->max_model_len = model->config.max_position_embeddings;
    return model;
  }();
  return *small;
}

}  // namespace hydra::fuzz

#endif  // HYDRA_TESTS_FUZZ_FUZZ_SUPPORT_H_
