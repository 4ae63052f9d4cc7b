// Writes a Hugging Face style model folder with random weights in the exact
// shapes of a real model, for timing and testing models larger than the
// default one without downloading them:
//
//   hydra_make_synthetic_model --preset=qwen2.5-0.5b --out=models/qwen2.5-0.5b
//   hydra_make_synthetic_model --preset=llama3.2-1b --layers=2 --hidden=512
//       --intermediate=1024 --heads=8 --kv_heads=2 --dtype=f32 --out=DIR
//
// Presets (bench/synthetic_presets.cc) carry the published configs; the shape
// flags override them. Without --preset the folder has the TinyLlama 1.1B
// shape in F32 (the flags' old defaults). The weights are random (see
// bench/synthetic_weights.cc for their scales) and the same for the same
// --seed; the text they produce is noise, their numerics and speed are not.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/synthetic_presets.h"
#include "bench/synthetic_weights.h"
#include "common/status_macros.h"
#include "model/config.h"
#include "model/safetensors.h"

ABSL_FLAG(std::string, out, "", "Folder to write");
ABSL_FLAG(std::string, preset, "",
          "qwen2.5-0.5b, llama3.2-1b or llama-tiny (the default)");
ABSL_FLAG(std::optional<std::string>, tokenizer, std::nullopt,
          "tokenizer.model (SentencePiece) or tokenizer.json (byte-level BPE; "
          "its tokenizer_config.json is copied too when beside it); default: "
          "the preset's, relative to the working directory; \"none\" for "
          "a folder without one (enough for the forward pass alone)");
ABSL_FLAG(std::optional<std::string>, dtype, std::nullopt,
          "bf16, f16 or f32; default: the preset's (bf16 for the real "
          "models, f32 for llama-tiny)");
ABSL_FLAG(uint64_t, seed, 1, "Weights are a function of the seed alone");
ABSL_FLAG(std::optional<int>, hidden, std::nullopt, "hidden_size");
ABSL_FLAG(std::optional<int>, layers, std::nullopt, "num_hidden_layers");
ABSL_FLAG(std::optional<int>, heads, std::nullopt, "num_attention_heads");
ABSL_FLAG(std::optional<int>, kv_heads, std::nullopt, "num_key_value_heads");
ABSL_FLAG(std::optional<int>, head_dim, std::nullopt, "head_dim");
ABSL_FLAG(std::optional<int>, intermediate, std::nullopt, "intermediate_size");
ABSL_FLAG(std::optional<int>, vocab, std::nullopt, "vocab_size");
ABSL_FLAG(std::optional<int>, max_positions, std::nullopt,
          "max_position_embeddings");

namespace {

namespace fs = std::filesystem;
using hydra::model::DType;

absl::StatusOr<DType> ParseDType(const std::string& name) {
  if (name == "bf16") return DType::kBF16;
  if (name == "f16") return DType::kF16;
  if (name == "f32") return DType::kF32;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype=", name, ": expected bf16, f16 or f32"));
}

const char* TorchDType(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
  }
  return "float32";
}

void Override(const absl::Flag<std::optional<int>>& flag, int& field) {
  if (std::optional<int> value = absl::GetFlag(flag)) field = *value;
}

// The preset with the flags applied, checked by the same parser the server
// uses, so a folder is never written that hydra would refuse.
absl::StatusOr<hydra::model::ModelConfig> BuildConfig(
    hydra::model::ModelConfig c) {
  const bool derived_head_dim = c.head_dim == 0;
  Override(FLAGS_hidden, c.hidden_size);
  Override(FLAGS_layers, c.num_layers);
  Override(FLAGS_heads, c.num_heads);
  Override(FLAGS_kv_heads, c.num_kv_heads);
  Override(FLAGS_intermediate, c.intermediate_size);
  Override(FLAGS_vocab, c.vocab_size);
  Override(FLAGS_max_positions, c.max_position_embeddings);
  if (derived_head_dim && c.num_heads > 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  Override(FLAGS_head_dim, c.head_dim);
  return hydra::model::ParseModelConfig(hydra::model::ModelConfigToJson(c),
                                        "the synthetic config");
}

// Copies a tokenizer.model, or a tokenizer.json with its tokenizer_config.json,
// and removes the other kind from `out`: a folder holding both would be
// read through tokenizer.model.
absl::Status CopyTokenizer(const fs::path& source, const fs::path& out) {
  std::error_code ec;
  const bool none = source == "none";
  const bool json = source.extension() == ".json";
  if (!none && !json && source.extension() != ".model") {
    return absl::InvalidArgumentError(
        absl::StrCat("--tokenizer=", source.string(),
                     ": expected a tokenizer.model or a tokenizer.json file"));
  }
  for (const char* stale :
       {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"}) {
    fs::remove(out / stale, ec);
  }
  if (none) return absl::OkStatus();
  const auto copy = [&](const fs::path& from, const fs::path& to) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    return ec ? absl::NotFoundError(absl::StrCat("cannot copy ", from.string(),
                                                 ": ", ec.message()))
              : absl::OkStatus();
  };
  if (!json) return copy(source, out / "tokenizer.model");
  RETURN_IF_ERROR(copy(source, out / "tokenizer.json"));
  const fs::path config = source.parent_path() / "tokenizer_config.json";
  if (!fs::exists(config, ec)) return absl::OkStatus();
  return copy(config, out / "tokenizer_config.json");
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out ? absl::OkStatus()
             : absl::UnavailableError(
                   absl::StrCat(path.string(), ": write failed"));
}

absl::Status Run() {
  const fs::path out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  ASSIGN_OR_RETURN(
      hydra::bench::SyntheticPreset preset,
      hydra::bench::FindSyntheticPreset(absl::GetFlag(FLAGS_preset)));
  DType dtype = preset.dtype;
  if (std::optional<std::string> name = absl::GetFlag(FLAGS_dtype)) {
    ASSIGN_OR_RETURN(dtype, ParseDType(*name));
  }
  preset.config.torch_dtype = TorchDType(dtype);
  ASSIGN_OR_RETURN(const hydra::model::ModelConfig config,
                   BuildConfig(preset.config));

  // Checked before the weights are written, which takes a while.
  const fs::path tokenizer =
      absl::GetFlag(FLAGS_tokenizer).value_or(preset.tokenizer);
  std::error_code ec;
  if (tokenizer != "none" && !fs::is_regular_file(tokenizer, ec)) {
    return absl::NotFoundError(
        absl::StrCat("--tokenizer=", tokenizer.string(),
                     ": no such file (\"none\" writes no tokenizer)"));
  }

  const auto start = std::chrono::steady_clock::now();
  fs::create_directories(out, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", out.string(), ": ", ec.message()));
  }
  // A shard index left by an earlier checkpoint would be read instead.
  fs::remove(out / "model.safetensors.index.json", ec);
  const std::vector<hydra::model::TensorToWrite> tensors =
      hydra::bench::SyntheticTensors(config, dtype, absl::GetFlag(FLAGS_seed));
  RETURN_IF_ERROR(
      hydra::model::WriteSafetensors(out / "model.safetensors", tensors));
  RETURN_IF_ERROR(
      WriteText(out / "config.json", hydra::model::ModelConfigToJson(config)));
  RETURN_IF_ERROR(WriteText(out / "generation_config.json",
                            hydra::model::GenerationConfigToJson(config)));
  RETURN_IF_ERROR(CopyTokenizer(tokenizer, out));

  int64_t params = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "wrote %s: %.3fB parameters, %.2f GB %s, %.1f s\n", out.c_str(),
      params / 1e9,
      params * static_cast<double>(hydra::model::DTypeSize(dtype)) / 1e9,
      std::string(hydra::model::DTypeName(dtype)).c_str(), seconds);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = Run(); !s.ok()) {
    std::fprintf(stderr, "hydra_make_synthetic_model: %s\n",
                 s.ToString().c_str());
    return 1;
  }
  return 0;
}
