// Safetensors checkpoints: a memory-mapped reader that validates everything
// before any tensor is touched, and a writer (used by the llama2.c converter).
//
// File layout: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"},
// then the data area; offsets are relative to the data area.
#ifndef HYDRA_MODEL_SAFETENSORS_H_
#define HYDRA_MODEL_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hydra::model {

enum class DType { kF32, kF16, kBF16 };
std::string_view DTypeName(DType dtype);  // "F32", "F16", "BF16"
size_t DTypeSize(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets into the data area
  size_t end = 0;
  int64_t num_elements() const;
};

// One .safetensors file, mapped read-only. Open() checks: header length
// within the file, JSON well formed, every entry's dtype known, shape
// non-negative, data_offsets inside the data area, size == elements * dtype
// size, and no two tensors overlapping. Errors name the file and the tensor.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(std::string_view name) const;
  std::span<const std::byte> Bytes(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  const std::byte* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// A row-major block of a tensor seen as a matrix, still in the file's dtype
// and memory (valid while its Checkpoint is open): what a loader packs from
// without an intermediate fp32 copy.
struct TensorBlock {
  const std::byte* data = nullptr;  // element (row 0, column 0)
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // elements between consecutive rows
};

// A checkpoint folder: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` ("weight_map": tensor -> shard file).
class Checkpoint {
 public:
  static absl::StatusOr<Checkpoint> Open(const std::filesystem::path& dir);

  // Copies tensor `name` to fp32 (converting F16/BF16) after checking that
  // its shape equals `expected_shape`. A missing tensor or a wrong shape is
  // an error naming the file and the tensor.
  absl::StatusOr<std::vector<float>> ReadF32(
      std::string_view name, std::span<const int64_t> expected_shape) const;
  // Like ReadF32, but only rows [row_begin, row_end) and columns
  // [col_begin, col_end) of the tensor seen as a matrix (first dimension by
  // the product of the rest): a tensor-parallel rank reads only its slice.
  absl::StatusOr<std::vector<float>> ReadF32Block(
      std::string_view name, std::span<const int64_t> expected_shape,
      int64_t row_begin, int64_t row_end, int64_t col_begin,
      int64_t col_end) const;
  // The same block as ReadF32Block, left in place: no copy, no conversion.
  absl::StatusOr<TensorBlock> Block(std::string_view name,
                                    std::span<const int64_t> expected_shape,
                                    int64_t row_begin, int64_t row_end,
                                    int64_t col_begin, int64_t col_end) const;
  // Drops the resident pages of tensor `name` (a hint; the file stays
  // mapped and a later read faults them back in): a loader that has packed
  // a tensor calls it, so load-time memory peaks at the packed weights plus
  // one tensor, not plus the whole file.
  void Release(std::string_view name) const;
  // The same for the bytes a block spans (whole pages inside them).
  static void Release(const TensorBlock& block);
  // The dtype of tensor `name`, or NotFound.
  absl::StatusOr<DType> TensorDType(std::string_view name) const;
  bool Has(std::string_view name) const;
  // The first tensor name (in byte order) that starts with `prefix`.
  std::optional<std::string> FirstWithPrefix(std::string_view prefix) const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner_;
};

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  std::span<const float> data;  // fp32 values, stored as `dtype`
  // F32 as is; BF16 and F16 rounded to nearest even (model/half_float.h).
  DType dtype = DType::kF32;
  // When set, supplies the values instead of `data` (which must then be
  // empty): called with consecutive ranges [begin, begin + out.size()) in
  // order, so a tensor need never be held whole in fp32 (a synthetic model
  // of billions of values is written in a few MB).
  std::function<void(int64_t begin, std::span<float> out)> generate = nullptr;
};

// Writes a safetensors file (header padded to 8 bytes, tensors in the order
// given), streaming: it holds one chunk of each tensor at a time.
absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorToWrite> tensors);

}  // namespace hydra::model

#endif  // HYDRA_MODEL_SAFETENSORS_H_
