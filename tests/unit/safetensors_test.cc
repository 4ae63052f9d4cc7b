#include "model/safetensors.h"

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hydra::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh folder per test, so tests never see each other's files.
fs::path TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) / "safetensors_test" /
                 (std::string(info->test_suite_name()) + "." + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A safetensors file from a hand-written header, so tests can say anything a
// broken or hostile writer might. `header_len` overrides the length prefix.
std::string RawFile(const std::string& header, const std::string& data,
                    uint64_t header_len = UINT64_MAX) {
  if (header_len == UINT64_MAX) header_len = header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(header_len >> (8 * i));
  return bytes + header + data;
}

std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string bytes;
  for (uint16_t v : values) {
    bytes.push_back(static_cast<char>(v & 0xff));
    bytes.push_back(static_cast<char>(v >> 8));
  }
  return bytes;
}

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& needles) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& needle : needles) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(needle));
  }
}

std::vector<float> RandomNonZero(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> magnitude(0.1f, 10.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> values(n);
  for (float& v : values) v = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return values;
}

TEST(SafetensorsTest, RoundTripsWriterToReader) {
  const fs::path dir = TestDir();
  std::mt19937 rng(1234);
  const std::vector<int64_t> shape_a = {4, 3}, shape_b = {7},
                             shape_c = {2, 3, 5};
  const std::vector<float> a = RandomNonZero(12, rng);
  const std::vector<float> b = RandomNonZero(7, rng);
  const std::vector<float> c = RandomNonZero(30, rng);
  const std::vector<TensorToWrite> tensors = {
      {"tok_embeddings.weight", shape_a, a},
      {"norm.weight", shape_b, b},
      {"layers.0.attention.wq.weight", shape_c, c}};
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.tmp"));

  auto file = SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  // Tensors come back in the order written, packed with no gaps.
  ASSERT_EQ((*file)->tensors().size(), 3u);
  size_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& info = (*file)->tensors()[i];
    EXPECT_EQ(info.name, tensors[i].name);
    EXPECT_EQ(info.dtype, DType::kF32);
    EXPECT_EQ(info.shape, tensors[i].shape);
    EXPECT_EQ(info.begin, offset);
    offset = info.end;
  }
  // The header length keeps the data area 8-byte aligned.
  uint64_t header_len = 0;
  std::ifstream in(dir / "model.safetensors", std::ios::binary);
  in.read(reinterpret_cast<char*>(&header_len), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(fs::file_size(dir / "model.safetensors"), 8 + header_len + offset);

  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  for (const TensorToWrite& t : tensors) {
    EXPECT_TRUE(checkpoint->Has(t.name));
    auto values = checkpoint->ReadF32(t.name, t.shape);
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ(*values, std::vector<float>(t.data.begin(), t.data.end()));
  }
  EXPECT_FALSE(checkpoint->Has("output.weight"));
}

TEST(SafetensorsTest, ConvertsF16) {
  const fs::path dir = TestDir();
  const std::vector<uint16_t> halves = {
      0x3C00,  // 1
      0xC000,  // -2
      0x3555,  // 0.333251953125
      0x7BFF,  // 65504, largest finite
      0x0400,  // 2^-14, smallest normal
      0x03FF,  // 1023 * 2^-24, largest subnormal
      0x0001,  // 2^-24, smallest subnormal
      0x8000,  // -0
      0x7C00,  // +inf
      0xFC00,  // -inf
      0x7E00,  // NaN
  };
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}})";
  WriteBytes(dir / "model.safetensors", RawFile(header, U16Bytes(halves)));

  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape = {11};
  auto values = checkpoint->ReadF32("h", shape);
  ASSERT_TRUE(values.ok()) << values.status();
  const std::vector<float>& v = *values;
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 0.333251953125f);
  EXPECT_EQ(v[3], 65504.0f);
  EXPECT_EQ(v[4], std::ldexp(1.0f, -14));
  EXPECT_EQ(v[5], std::ldexp(1023.0f, -24));
  EXPECT_EQ(v[6], std::ldexp(1.0f, -24));
  EXPECT_EQ(v[7], 0.0f);
  EXPECT_TRUE(std::signbit(v[7]));
  EXPECT_EQ(v[8], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[9], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[10]));
}

TEST(SafetensorsTest, ConvertsBF16) {
  const fs::path dir = TestDir();
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x4049,
                                      0x7F80, 0x0001, 0x7FC0};
  const std::string header =
      R"({"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}})";
  WriteBytes(dir / "model.safetensors", RawFile(header, U16Bytes(bf16)));

  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape = {2, 3};
  auto values = checkpoint->ReadF32("b", shape);
  ASSERT_TRUE(values.ok()) << values.status();
  const std::vector<float>& v = *values;
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -3.0f);
  EXPECT_EQ(v[2], 3.140625f);
  EXPECT_EQ(v[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[4], std::bit_cast<float>(uint32_t{0x00010000}));  // subnormal
  EXPECT_TRUE(std::isnan(v[5]));
}

// Each malformed file must be refused by Open with the file's path and,
// where one is at fault, the tensor's name in the message.
class MalformedTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = TestDir() / "model.safetensors"; }
  absl::Status OpenRaw(const std::string& bytes) {
    WriteBytes(path_, bytes);
    return SafetensorsFile::Open(path_).status();
  }
  fs::path path_;
};

TEST_F(MalformedTest, TruncatedData) {
  std::mt19937 rng(7);
  const std::vector<float> a = RandomNonZero(6, rng), b = RandomNonZero(4, rng);
  const std::vector<TensorToWrite> tensors = {{"a", {2, 3}, a}, {"b", {4}, b}};
  ASSERT_TRUE(WriteSafetensors(path_, tensors).ok());
  fs::resize_file(path_, fs::file_size(path_) - 5);
  ExpectError(SafetensorsFile::Open(path_).status(),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"b\"", "truncated"});
}

TEST_F(MalformedTest, ShorterThanEightBytes) {
  ExpectError(OpenRaw("abcde"), absl::StatusCode::kInvalidArgument,
              {path_.string(), "5 bytes"});
}

TEST_F(MalformedTest, EmptyFile) {
  ExpectError(OpenRaw(""), absl::StatusCode::kInvalidArgument,
              {path_.string()});
}

TEST_F(MalformedTest, HeaderLengthPastEndOfFile) {
  ExpectError(OpenRaw(RawFile("{}", "", /*header_len=*/1000)),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "header length 1000"});
}

TEST_F(MalformedTest, HugeHeaderLengthDoesNotWrap) {
  ExpectError(OpenRaw(RawFile("{}", "", /*header_len=*/UINT64_MAX - 3)),
              absl::StatusCode::kInvalidArgument, {path_.string()});
}

TEST_F(MalformedTest, HeaderNotJson) {
  ExpectError(OpenRaw(RawFile("{\"a\": [1, 2", "")),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "not valid JSON"});
}

TEST_F(MalformedTest, HeaderNotObject) {
  ExpectError(OpenRaw(RawFile("[1, 2]  ", "")),
              absl::StatusCode::kInvalidArgument, {path_.string(), "object"});
}

TEST_F(MalformedTest, DataOffsetsOutOfRange) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(16, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "data area of 16 bytes"});
}

TEST_F(MalformedTest, DataOffsetsBackwards) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(16, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "backwards"});
}

TEST_F(MalformedTest, DataOffsetsNegative) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(16, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "data_offsets"});
}

TEST_F(MalformedTest, OverlappingTensors) {
  const std::string header =
      R"({"first":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("second":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(24, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"first\"", "\"second\"", "overlaps"});
}

TEST_F(MalformedTest, SizeDoesNotMatchShapeTimesDType) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(24, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "[2, 3]", "needs 24"});
}

TEST_F(MalformedTest, ShapeProductOverflows) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  ExpectError(OpenRaw(RawFile(header, "")), absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "too large"});
}

TEST_F(MalformedTest, NegativeShape) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(4, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "non-negative"});
}

TEST_F(MalformedTest, UnknownDType) {
  const std::string header =
      R"({"position_ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})";
  ExpectError(
      OpenRaw(RawFile(header, std::string(16, '\1'))),
      absl::StatusCode::kInvalidArgument,
      {path_.string(), "\"position_ids\"", "\"I64\"", "F32, F16, BF16"});
}

TEST_F(MalformedTest, MissingDType) {
  const std::string header = R"({"w":{"shape":[1],"data_offsets":[0,4]}})";
  ExpectError(OpenRaw(RawFile(header, std::string(4, '\1'))),
              absl::StatusCode::kInvalidArgument,
              {path_.string(), "\"w\"", "dtype"});
}

TEST_F(MalformedTest, MissingFile) {
  ExpectError(SafetensorsFile::Open(path_).status(),
              absl::StatusCode::kNotFound, {path_.string()});
}

TEST(CheckpointTest, ReadF32RefusesWrongShape) {
  const fs::path dir = TestDir();
  const std::vector<float> data(6, 0.5f);
  const std::vector<TensorToWrite> tensors = {{"w", {2, 3}, data}};
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> expected = {3, 2};
  ExpectError(checkpoint->ReadF32("w", expected).status(),
              absl::StatusCode::kInvalidArgument,
              {(dir / "model.safetensors").string(), "\"w\"", "[2, 3]",
               "expected [3, 2]"});
}

// Issue 15 item 11: a zero-size tensor is read as empty (UBSan saw memcpy
// handed a null pointer here).
TEST(CheckpointTest, ReadsZeroSizeTensors) {
  const fs::path dir = TestDir();
  const std::vector<float> none;
  const std::vector<float> one(3, 0.5f);
  const std::vector<TensorToWrite> tensors = {{"empty", {1, 0}, none},
                                              {"w", {1, 3}, one}};
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape = {1, 0};
  auto empty = checkpoint->ReadF32("empty", shape);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  const std::vector<int64_t> w_shape = {1, 3};
  auto w = checkpoint->ReadF32("w", w_shape);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w, one);
}

// Found by tests/fuzz/safetensors_fuzzer: a tensor with no rows ([0, 4])
// was refused by ReadF32 ("has no block rows [0, 0) x columns [0, 4)"),
// and one whose other dimensions multiply past int64 overflowed a signed
// product (UBSan). Both read as empty.
TEST(CheckpointTest, ReadsTensorsWithoutRows) {
  const fs::path dir = TestDir();
  WriteBytes(dir / "model.safetensors",
             RawFile(R"({"no_rows": {"dtype": "F32", "shape": [0, 4],)"
                     R"( "data_offsets": [0, 0]},)"
                     R"( "huge": {"dtype": "BF16",)"
                     R"( "shape": [0, 1099511627776, 1099511627776],)"
                     R"( "data_offsets": [0, 0]}})",
                     ""));
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape = {0, 4};
  auto no_rows = checkpoint->ReadF32("no_rows", shape);
  ASSERT_TRUE(no_rows.ok()) << no_rows.status();
  EXPECT_TRUE(no_rows->empty());
  const std::vector<int64_t> huge_shape = {0, int64_t{1} << 40,
                                           int64_t{1} << 40};
  auto huge = checkpoint->ReadF32("huge", huge_shape);
  ASSERT_TRUE(huge.ok()) << huge.status();
  EXPECT_TRUE(huge->empty());
}

TEST(CheckpointTest, ReadF32RefusesMissingTensor) {
  const fs::path dir = TestDir();
  const std::vector<float> data(6, 0.5f);
  const std::vector<TensorToWrite> tensors = {{"w", {2, 3}, data}};
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape = {2, 3};
  ExpectError(
      checkpoint->ReadF32("output.weight", shape).status(),
      absl::StatusCode::kNotFound,
      {(dir / "model.safetensors").string(), "\"output.weight\"", "not found"});
}

TEST(CheckpointTest, MissingCheckpointIsNotFound) {
  const fs::path dir = TestDir();
  ExpectError(Checkpoint::Open(dir).status(), absl::StatusCode::kNotFound,
              {(dir / "model.safetensors").string()});
}

TEST(CheckpointTest, ReadsShardsThroughIndex) {
  const fs::path dir = TestDir();
  std::mt19937 rng(99);
  const std::vector<float> a = RandomNonZero(8, rng), b = RandomNonZero(5, rng),
                           c = RandomNonZero(3, rng);
  const std::vector<TensorToWrite> shard1 = {{"a", {2, 4}, a}, {"b", {5}, b}};
  const std::vector<TensorToWrite> shard2 = {{"c", {3}, c}};
  ASSERT_TRUE(
      WriteSafetensors(dir / "model-00001-of-00002.safetensors", shard1).ok());
  ASSERT_TRUE(
      WriteSafetensors(dir / "model-00002-of-00002.safetensors", shard2).ok());
  nlohmann::json index = {{"metadata", {{"total_size", 64}}},
                          {"weight_map",
                           {{"a", "model-00001-of-00002.safetensors"},
                            {"b", "model-00001-of-00002.safetensors"},
                            {"c", "model-00002-of-00002.safetensors"}}}};
  WriteBytes(dir / "model.safetensors.index.json", index.dump());

  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<int64_t> shape_a = {2, 4}, shape_c = {3};
  auto read_a = checkpoint->ReadF32("a", shape_a);
  auto read_c = checkpoint->ReadF32("c", shape_c);
  ASSERT_TRUE(read_a.ok()) << read_a.status();
  ASSERT_TRUE(read_c.ok()) << read_c.status();
  EXPECT_EQ(*read_a, a);
  EXPECT_EQ(*read_c, c);
  EXPECT_TRUE(checkpoint->Has("b"));

  // A wrong shape names the shard that holds the tensor.
  ExpectError(checkpoint->ReadF32("c", shape_a).status(),
              absl::StatusCode::kInvalidArgument,
              {"model-00002-of-00002.safetensors", "\"c\""});
}

TEST(CheckpointTest, RefusesIndexThatDisagreesWithShards) {
  const fs::path dir = TestDir();
  const std::vector<float> data(4, 1.5f);
  const std::vector<TensorToWrite> shard = {{"a", {4}, data}};
  ASSERT_TRUE(WriteSafetensors(dir / "shard.safetensors", shard).ok());
  nlohmann::json index = {
      {"weight_map",
       {{"a", "shard.safetensors"}, {"ghost", "shard.safetensors"}}}};
  WriteBytes(dir / "model.safetensors.index.json", index.dump());
  ExpectError(Checkpoint::Open(dir).status(),
              absl::StatusCode::kInvalidArgument,
              {"model.safetensors.index.json", "\"ghost\""});
}

TEST(CheckpointTest, RefusesShardOutsideFolder) {
  const fs::path dir = TestDir();
  nlohmann::json index = {{"weight_map", {{"a", "../elsewhere.safetensors"}}}};
  WriteBytes(dir / "model.safetensors.index.json", index.dump());
  ExpectError(Checkpoint::Open(dir).status(),
              absl::StatusCode::kInvalidArgument,
              {"model.safetensors.index.json", "\"a\"", "file name"});
}

TEST(CheckpointTest, RefusesMalformedIndex) {
  const fs::path dir = TestDir();
  WriteBytes(dir / "model.safetensors.index.json", "{\"weight_map\": [");
  ExpectError(Checkpoint::Open(dir).status(),
              absl::StatusCode::kInvalidArgument,
              {"model.safetensors.index.json", "weight_map"});
}

// The BF16 nearest to `v`, ties to even, found by comparing the distances
// to the two candidates in double (exact for these values): a second
// derivation of what the writer's bit trick must give.
uint16_t ExpectedBFloat16(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  if (std::isnan(v)) return 0x7fc0;  // compared as "a NaN" only
  if (std::isinf(v)) return static_cast<uint16_t>(bits >> 16);
  const uint16_t toward_zero = static_cast<uint16_t>(bits >> 16);
  const uint16_t away = toward_zero + 1;
  auto value = [](uint16_t b) -> double {
    // Past the largest finite BF16 the next candidate is 2^128, which rounds
    // to infinity.
    if ((b & 0x7fff) == 0x7f80)
      return std::copysign(std::ldexp(1.0, 128), b & 0x8000 ? -1.0 : 1.0);
    return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
  };
  const double lo = std::abs(double(v) - value(toward_zero));
  const double hi = std::abs(double(v) - value(away));
  if (lo < hi) return toward_zero;
  if (hi < lo) return away;
  return (toward_zero & 1) ? away : toward_zero;
}

// The processor's own float -> half conversion (F16C, which every hydra
// build targets; round to nearest even), and back. Not the compiler's
// _Float16: clang before 15 (the sanitizer build's) has none on x86.
uint16_t ExpectedHalf(float v) {
  return _cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
float HalfValue(uint16_t h) { return _cvtsh_ss(h); }

std::vector<float> RoundingCases(std::mt19937& rng) {
  std::vector<float> values = {
      0.0f,
      -0.0f,
      1.0f,
      -1.0f,
      1.0f + std::ldexp(1.0f, -8),       // BF16 tie, kept part even: down
      1.0f + 3 * std::ldexp(1.0f, -8),   // BF16 tie, kept part odd: up
      1.0f + std::ldexp(1.0f, -11),      // F16 tie: down
      1.0f + 3 * std::ldexp(1.0f, -11),  // F16 tie: up
      65504.0f,
      65519.0f,
      65520.0f,  // F16 largest, below and at the tie
      std::ldexp(1.0f, -14),
      std::ldexp(1.0f, -24),  // F16 normal/subnormal
      std::ldexp(1.0f, -25),
      std::ldexp(3.0f, -26),     // F16 ties near zero
      std::ldexp(1023.5f, -24),  // F16 largest subnormal rounds to 2^-14
      std::numeric_limits<float>::max(),
      std::numeric_limits<float>::min(),
      std::numeric_limits<float>::denorm_min(),
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::quiet_NaN(),
      std::bit_cast<float>(uint32_t{0x7f800001}),  // signalling NaN
      std::bit_cast<float>(uint32_t{0xffffffff}),  // NaN, all ones
  };
  // Every exponent and mantissa, from random bit patterns...
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 20000; ++i)
    values.push_back(std::bit_cast<float>(bits(rng)));
  // ... and values of the size weights have, where most of a model lives.
  std::normal_distribution<float> weight(0.0f, 0.05f);
  for (int i = 0; i < 20000; ++i) values.push_back(weight(rng));
  return values;
}

void ExpectSameFloat(float actual, float expected, size_t i, float input) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << "value " << i << " (" << input << ")";
  } else {
    EXPECT_EQ(std::bit_cast<uint32_t>(actual),
              std::bit_cast<uint32_t>(expected))
        << "value " << i << " (" << input << "): got " << actual
        << ", expected " << expected;
  }
}

TEST(WriteSafetensorsTest, RoundsBF16AndF16ToNearestEven) {
  const fs::path dir = TestDir();
  std::mt19937 rng(99);
  const std::vector<float> values = RoundingCases(rng);
  const std::vector<int64_t> shape = {static_cast<int64_t>(values.size())};
  std::vector<TensorToWrite> tensors = {{"f32", shape, values, DType::kF32},
                                        {"bf16", shape, values, DType::kBF16},
                                        {"f16", shape, values, DType::kF16}};
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());

  auto file = SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("bf16")->dtype, DType::kBF16);
  EXPECT_EQ((*file)->Find("f16")->dtype, DType::kF16);
  EXPECT_EQ((*file)->Find("f16")->end - (*file)->Find("f16")->begin,
            2 * values.size());
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto f32 = checkpoint->ReadF32("f32", shape);
  auto bf16 = checkpoint->ReadF32("bf16", shape);
  auto f16 = checkpoint->ReadF32("f16", shape);
  ASSERT_TRUE(f32.ok() && bf16.ok() && f16.ok());
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    ExpectSameFloat((*f32)[i], v, i, v);
    ExpectSameFloat((*bf16)[i],
                    std::bit_cast<float>(uint32_t{ExpectedBFloat16(v)} << 16),
                    i, v);
    ExpectSameFloat((*f16)[i], HalfValue(ExpectedHalf(v)), i, v);
    if (testing::Test::HasFailure()) break;  // one message, not 40000
  }
}

TEST(WriteSafetensorsTest, GeneratedTensorsComeInOrderedChunks) {
  const fs::path dir = TestDir();
  // More than one chunk, and not a multiple of one.
  const int64_t n = (int64_t{1} << 21) + 12345;
  int64_t next = 0;
  bool in_order = true;
  TensorToWrite t{"g", {n}, {}, DType::kBF16};
  t.generate = [&](int64_t begin, std::span<float> out) {
    in_order = in_order && begin == next;
    next = begin + static_cast<int64_t>(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<float>((begin + static_cast<int64_t>(i)) % 256);
    }
  };
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", {&t, 1}).ok());
  EXPECT_TRUE(in_order);
  EXPECT_EQ(next, n);
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto values = checkpoint->ReadF32("g", t.shape);
  ASSERT_TRUE(values.ok()) << values.status();
  for (int64_t i = 0; i < n; i += 4099) {
    ASSERT_EQ((*values)[i], static_cast<float>(i % 256)) << i;
  }
  EXPECT_EQ(values->back(), static_cast<float>((n - 1) % 256));
}

TEST(WriteSafetensorsTest, RefusesDataNextToAGenerator) {
  const fs::path dir = TestDir();
  const std::vector<float> data(6, 1.0f);
  TensorToWrite t{"w", {2, 3}, data};
  t.generate = [](int64_t, std::span<float>) {};
  ExpectError(WriteSafetensors(dir / "model.safetensors", {&t, 1}),
              absl::StatusCode::kInvalidArgument, {"\"w\"", "generator"});
}

TEST(WriteSafetensorsTest, RefusesDataNotMatchingShape) {
  const fs::path dir = TestDir();
  const std::vector<float> data(5, 1.0f);
  const std::vector<TensorToWrite> tensors = {{"w", {2, 3}, data}};
  ExpectError(WriteSafetensors(dir / "model.safetensors", tensors),
              absl::StatusCode::kInvalidArgument, {"\"w\"", "[2, 3]"});
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
}

}  // namespace
}  // namespace hydra::model
