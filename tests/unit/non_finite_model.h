// stories15M with weights that are not finite, for the tests of their
// count (issue 15, item 12): the engine's, and GetModelInfo's end to end.
#ifndef HYDRA_TESTS_UNIT_NON_FINITE_MODEL_H_
#define HYDRA_TESTS_UNIT_NON_FINITE_MODEL_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "model/safetensors.h"
#include "tests/unit/test_model.h"

namespace hydra::testing {

inline constexpr char kPoisonedProjection[] =
    "model.layers.0.mlp.down_proj.weight";
inline constexpr char kPoisonedNorm[] = "model.layers.1.input_layernorm.weight";
// Holds 1e6: finite, but beyond f16's 65504.
inline constexpr char kF16OverflowProjection[] =
    "model.layers.0.self_attn.q_proj.weight";

// Overwrites element `index` of F32 tensor `tensor` in a safetensors file.
inline void Poke(const std::filesystem::path& file, const std::string& tensor,
                 int64_t index, float value) {
  auto parsed = model::SafetensorsFile::Open(file);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const model::TensorInfo* info = (*parsed)->Find(tensor);
  ASSERT_NE(info, nullptr) << tensor;
  ASSERT_EQ(info->dtype, model::DType::kF32) << tensor;
  const size_t begin = info->begin;
  parsed->reset();  // unmapped before the file changes
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header = 0;
  io.read(reinterpret_cast<char*>(&header), sizeof(header));
  io.seekp(static_cast<std::streamoff>(8 + header + begin + 4 * index));
  io.write(reinterpret_cast<const char*>(&value), sizeof(value));
  ASSERT_TRUE(io.good()) << file;
}

// A fresh copy of stories15M in `dir` (config and tokenizer linked) with 3
// NaNs in kPoisonedProjection, an Inf in kPoisonedNorm and 1e6 in
// kF16OverflowProjection: 4 non-finite weights, 5 as f16.
inline void WriteNonFiniteModel(const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* name : {"config.json", "tokenizer.model"}) {
    std::filesystem::create_symlink(ModelDir() / name, dir / name);
  }
  const std::filesystem::path weights = dir / "model.safetensors";
  std::filesystem::copy_file(ModelDir() / "model.safetensors", weights);
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  Poke(weights, kPoisonedProjection, 0, kNaN);
  Poke(weights, kPoisonedProjection, 100, kNaN);
  Poke(weights, kPoisonedProjection, 1000, -kNaN);
  Poke(weights, kPoisonedNorm, 7, std::numeric_limits<float>::infinity());
  Poke(weights, kF16OverflowProjection, 5, 1e6f);
}

}  // namespace hydra::testing

#endif  // HYDRA_TESTS_UNIT_NON_FINITE_MODEL_H_
