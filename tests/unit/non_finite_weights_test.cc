// Hardening (issue 15, item 12): NaN and Inf weights are counted while the
// weights pack, per tensor, in every weight format; the engine reports them
// and the load-time warning names them. A sound checkpoint counts 0.
#include "worker/non_finite_weights.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine_factory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/safetensors.h"
#include "tests/unit/non_finite_model.h"
#include "tests/unit/test_model.h"
#include "worker/cpu/kernels.h"

namespace hydra {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(NonFiniteWeightsWarningTest, NamesTheCountsAndTheFirstTensors) {
  worker::NonFiniteWeights none;
  EXPECT_EQ(worker::NonFiniteWeightsWarning(none), "");

  worker::NonFiniteWeights one;
  one.Add("model.norm.weight", 0);  // nothing to report
  one.Add("model.layers.0.mlp.down_proj.weight", 2);
  one.Add("model.layers.0.mlp.down_proj.weight", 1);  // a second part
  EXPECT_EQ(one.values, 3);
  EXPECT_EQ(worker::NonFiniteWeightsWarning(one),
            "warning: 3 weights are not finite (NaN or Inf) in 1 tensor: "
            "model.layers.0.mlp.down_proj.weight (3); outputs will be garbage");

  worker::NonFiniteWeights many;
  for (const char* name : {"a", "b", "c", "d", "e"}) many.Add(name, 1);
  EXPECT_EQ(worker::NonFiniteWeightsWarning(many),
            "warning: 5 weights are not finite (NaN or Inf) in 5 tensors: "
            "a (1), b (1), c (1) and 2 more; outputs will be garbage");
}

// Each source dtype into each packed format: the count is of the values as
// packed, so a finite value too large for f16 (or, at the very top of fp32's
// range, for bf16) counts there only. Checked against what ReadRow gives
// back, and on values either side of each format's limit.
TEST(PackedMatrixNonFiniteTest, CountsWhatEachFormatHolds) {
  constexpr int kRows = 37, kCols = 70;  // ragged: partial panels and blocks
  std::vector<float> values(kRows * kCols, 0.25f);
  const float edges[] = {kNaN,
                         -kInf,
                         kInf,
                         1e6f,
                         65504.0f,    // f16's largest
                         65519.996f,  // rounds down to it
                         65520.0f,    // rounds up to Inf
                         -65520.0f,
                         3.3895314e38f,                      // bf16's largest
                         std::numeric_limits<float>::max(),  // bf16: Inf
                         std::numeric_limits<float>::denorm_min()};
  for (size_t i = 0; i < std::size(edges); ++i) {
    values[(i * 331) % values.size()] = edges[i];  // across rows and panels
  }
  const fs::path dir = fs::path(::testing::TempDir()) / "non_finite_pack";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const model::DType stored :
       {model::DType::kF32, model::DType::kBF16, model::DType::kF16}) {
    const std::vector<model::TensorToWrite> tensors = {
        {"t", {kRows, kCols}, values, stored}};
    ASSERT_TRUE(
        model::WriteSafetensors(dir / "model.safetensors", tensors).ok());
    auto checkpoint = model::Checkpoint::Open(dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    auto block = checkpoint->Block("t", std::vector<int64_t>{kRows, kCols}, 0,
                                   kRows, 0, kCols);
    ASSERT_TRUE(block.ok()) << block.status();
    int64_t in_source = -1;
    for (const cpu::WeightType type :
         {cpu::WeightType::kF32, cpu::WeightType::kBF16, cpu::WeightType::kF16,
          cpu::WeightType::kInt8}) {
      SCOPED_TRACE(::testing::Message() << model::DTypeName(stored) << " as "
                                        << cpu::WeightTypeName(type));
      std::vector<int64_t> counts;
      const cpu::PackedMatrix packed = cpu::PackedMatrix::Pack(
          {&*block, 1}, type, 0,
          [&](const model::TensorBlock&, int64_t n) { counts.push_back(n); });
      ASSERT_EQ(counts.size(), 1u);
      if (type == cpu::WeightType::kInt8) {
        // Quantised blocks hold no NaN: counted are the source's.
        EXPECT_EQ(counts[0], in_source);
        continue;
      }
      int64_t held = 0;
      std::vector<float> row(kCols);
      for (int r = 0; r < kRows; ++r) {
        packed.ReadRow(r, row.data());
        for (float v : row) held += !std::isfinite(v);
      }
      EXPECT_EQ(counts[0], held);
      // fp32 holds every source value exactly.
      if (type == cpu::WeightType::kF32) in_source = held;
    }
    // What each source holds: NaN and two Infs, and what writing it as bf16
    // (fp32's largest) or f16 (also 1e6, ±65520 and bf16's largest) already
    // turned into Inf.
    EXPECT_EQ(in_source, stored == model::DType::kF32    ? 3
                         : stored == model::DType::kBF16 ? 4
                                                         : 8);
  }
  fs::remove_all(dir);
}

class NonFiniteModelTest : public ::testing::Test {
 protected:
  void SetUp() override { HYDRA_REQUIRE_MODEL(); }

  static engine::EngineOptions Options(const fs::path& dir,
                                       const std::string& weight_dtype) {
    engine::EngineOptions options;
    options.model_dir = dir.string();
    options.kv_cache_bytes = size_t{8} << 20;
    options.weight_dtype = weight_dtype;
    return options;
  }
};

TEST_F(NonFiniteModelTest, TheDefaultModelHasNone) {
  auto engine = engine::LoadEngine(Options(testing::ModelDir(), "auto"));
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->non_finite_weights().values, 0);
  EXPECT_THAT((*engine)->non_finite_weights().tensors, IsEmpty());
  EXPECT_EQ(worker::NonFiniteWeightsWarning((*engine)->non_finite_weights()),
            "");
}

// stories15M with three NaNs in one projection, an Inf in a norm and a value
// f16 cannot hold: it loads (garbage out, but no error) and reports them.
TEST_F(NonFiniteModelTest, PoisonedWeightsAreCountedPerTensorInEveryFormat) {
  const fs::path dir = fs::path(::testing::TempDir()) / "non_finite_model";
  ASSERT_NO_FATAL_FAILURE(testing::WriteNonFiniteModel(dir));
  const std::string down = testing::kPoisonedProjection;
  const std::string norm = testing::kPoisonedNorm;
  for (const std::string dtype : {"auto", "bf16", "f16", "int8"}) {
    SCOPED_TRACE(dtype);
    auto engine = engine::LoadEngine(Options(dir, dtype));
    ASSERT_TRUE(engine.ok()) << engine.status();
    const worker::NonFiniteWeights& found = (*engine)->non_finite_weights();
    if (dtype == "f16") {
      EXPECT_EQ(found.values, 5);
      EXPECT_THAT(found.tensors,
                  ElementsAre(Pair(testing::kF16OverflowProjection, 1),
                              Pair(down, 3), Pair(norm, 1)));
    } else {
      EXPECT_EQ(found.values, 4);
      EXPECT_THAT(found.tensors, ElementsAre(Pair(down, 3), Pair(norm, 1)));
      EXPECT_EQ(
          worker::NonFiniteWeightsWarning(found),
          "warning: 4 weights are not finite (NaN or Inf) in 2 tensors: " +
              down + " (3), " + norm + " (1); outputs will be garbage");
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hydra
