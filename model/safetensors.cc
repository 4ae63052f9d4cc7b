#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "model/half_float.h"
#include "nlohmann/json.hpp"

namespace hydra::model {
namespace {

// Safetensors is little-endian on disk; we copy bytes straight into floats.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

using Json = nlohmann::json;

constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

std::string ShapeString(std::span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Exact IEEE half -> float, subnormals, infinities and NaN payloads included.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Subnormal (or zero): mantissa * 2^-24, exact in float.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

// The number of columns of a tensor seen as a matrix: the product of every
// dimension after the first (1 for a scalar or a vector). A tensor with no
// rows passes the header's size check whatever its other dimensions are, so
// their product may exceed int64: it saturates, and such a tensor has no
// element for a column to address.
int64_t MatrixCols(std::span<const int64_t> shape) {
  int64_t cols = 1;
  bool overflow = false;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] == 0) return 0;
    overflow |= __builtin_mul_overflow(cols, shape[i], &cols);
  }
  return overflow ? std::numeric_limits<int64_t>::max() : cols;
}

float BFloat16ToFloat(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// A non-negative JSON integer, or nullopt for anything else (negative numbers,
// floats, strings...).
std::optional<uint64_t> AsUnsigned(const Json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  return value.get<uint64_t>();
}

}  // namespace

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

size_t DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

int64_t TensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::filesystem::path& path) {
  const std::string file = path.string();
  auto invalid = [&file](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", parts...));
  };

  FdCloser fd{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return absl::ErrnoToStatus(errno, file);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return absl::ErrnoToStatus(errno, file);
  if (!S_ISREG(st.st_mode)) return invalid("not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    return invalid("file is ", size,
                   " bytes, too short for the 8-byte header length");
  }

  // Owned from here on, so every early return unmaps.
  auto result = absl::WrapUnique(new SafetensorsFile());
  result->path_ = path;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (map == MAP_FAILED) return absl::ErrnoToStatus(errno, file + ": mmap");
  result->map_ = static_cast<const std::byte*>(map);
  result->map_size_ = size;

  uint64_t header_len;
  std::memcpy(&header_len, result->map_, sizeof(header_len));
  if (header_len > size - 8) {
    return invalid("header length ", header_len, " runs past the end of the ",
                   size, "-byte file");
  }
  const char* header = reinterpret_cast<const char*>(result->map_ + 8);
  Json json = Json::parse(header, header + header_len, nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) return invalid("header is not valid JSON");
  if (!json.is_object()) {
    return invalid("header must be a JSON object, got ", json.type_name());
  }
  result->data_start_ = 8 + header_len;
  const size_t data_size = size - result->data_start_;

  std::vector<TensorInfo>& tensors = result->tensors_;
  for (const auto& item : json.items()) {
    // Named, not a structured binding: lambdas cannot capture those before
    // clang 16 (the fuzz build's compiler is Debian's clang 14).
    const std::string& name = item.key();
    const Json& entry = item.value();
    if (name == "__metadata__") continue;
    auto bad = [&](auto&&... parts) {
      return invalid("tensor \"", name, "\": ", parts...);
    };
    if (!entry.is_object()) return bad("entry must be an object");

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return bad("\"dtype\" must be a string");
    }
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    const DType* dtype =
        std::find_if(std::begin(kAllDTypes), std::end(kAllDTypes),
                     [&](DType d) { return DTypeName(d) == dtype_name; });
    if (dtype == std::end(kAllDTypes)) {
      return bad("dtype \"", dtype_name,
                 "\" is not supported; allowed: F32, F16, BF16");
    }

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return bad("\"shape\" must be an array of non-negative integers");
    }
    std::vector<int64_t> shape;
    // Counted in bytes with overflow checks: a hostile shape must not wrap
    // into a size that happens to match its offsets.
    uint64_t bytes = DTypeSize(*dtype);
    for (const Json& dim : *shape_it) {
      std::optional<uint64_t> d = AsUnsigned(dim);
      if (!d.has_value() ||
          *d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return bad("\"shape\" must be an array of non-negative integers, got ",
                   shape_it->dump());
      }
      if (__builtin_mul_overflow(bytes, *d, &bytes)) {
        return bad("shape ", shape_it->dump(), " is too large");
      }
      shape.push_back(static_cast<int64_t>(*d));
    }

    auto offsets_it = entry.find("data_offsets");
    std::optional<uint64_t> begin, end;
    if (offsets_it != entry.end() && offsets_it->is_array() &&
        offsets_it->size() == 2) {
      begin = AsUnsigned((*offsets_it)[0]);
      end = AsUnsigned((*offsets_it)[1]);
    }
    if (!begin.has_value() || !end.has_value()) {
      return bad("\"data_offsets\" must be two non-negative integers");
    }
    if (*begin > *end) {
      return bad("data_offsets [", *begin, ", ", *end, "] run backwards");
    }
    if (*end > data_size) {
      return bad("data_offsets [", *begin, ", ", *end,
                 "] run past the data area of ", data_size,
                 " bytes (is the file truncated?)");
    }
    if (*end - *begin != bytes) {
      return bad("data_offsets [", *begin, ", ", *end, "] hold ", *end - *begin,
                 " bytes, but shape ", ShapeString(shape), " of ", dtype_name,
                 " needs ", bytes);
    }
    tensors.push_back(TensorInfo{name, *dtype, std::move(shape), *begin, *end});
  }

  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  // Empty tensors occupy no bytes, so they cannot overlap anything.
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin == t.end) continue;
    if (furthest != nullptr && t.begin < furthest->end) {
      return invalid("tensor \"", t.name, "\" (bytes [", t.begin, ", ", t.end,
                     ")) overlaps tensor \"", furthest->name, "\" (bytes [",
                     furthest->begin, ", ", furthest->end, "))");
    }
    if (furthest == nullptr || t.end > furthest->end) furthest = &t;
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    result->index_.emplace(tensors[i].name, i);
  }
  return result;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) {
    ::munmap(const_cast<std::byte*>(map_), map_size_);
  }
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> SafetensorsFile::Bytes(
    const TensorInfo& info) const {
  return {map_ + data_start_ + info.begin, info.end - info.begin};
}

namespace {

// Drops the resident pages wholly inside [data, data + size): neighbours
// share the edge pages.
void ReleasePages(const std::byte* data, size_t size) {
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(data) + size) / page * page;
  if (end > begin) {
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
}

}  // namespace

void Checkpoint::Release(std::string_view name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) return;
  const std::span<const std::byte> bytes =
      it->second->Bytes(*it->second->Find(name));
  ReleasePages(bytes.data(), bytes.size());
}

void Checkpoint::Release(const TensorBlock& block) {
  if (block.rows == 0) return;
  ReleasePages(block.data, ((block.rows - 1) * block.row_stride + block.cols) *
                               DTypeSize(block.dtype));
}

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::filesystem::path& dir) {
  Checkpoint checkpoint;
  checkpoint.dir_ = dir;
  const std::filesystem::path index_path = dir / "model.safetensors.index.json";
  const std::filesystem::path single_path = dir / "model.safetensors";
  std::error_code ec;

  std::vector<std::string> shard_names;
  Json weight_map = Json::object();
  if (std::filesystem::exists(index_path, ec)) {
    const std::string index_file = index_path.string();
    ASSIGN_OR_RETURN(std::string text, ReadFile(index_path));
    Json index = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto map_it = index.is_object() ? index.find("weight_map") : index.end();
    if (index.is_discarded() || !index.is_object() || map_it == index.end() ||
        !map_it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_file,
          ": expected a JSON object with a \"weight_map\" object of "
          "tensor -> shard file"));
    }
    weight_map = std::move(*map_it);
    std::set<std::string> distinct;
    for (const auto& [tensor, shard] : weight_map.items()) {
      // Shards are plain names next to the index: never follow a path out
      // of the checkpoint folder.
      const std::string name =
          shard.is_string() ? shard.get<std::string>() : "";
      if (name.empty() || name == "." || name == ".." ||
          std::filesystem::path(name).filename() != name) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_file, ": tensor \"", tensor, "\": shard ", shard.dump(),
            " must be a file name in ", dir.string()));
      }
      if (distinct.insert(name).second) shard_names.push_back(name);
    }
    if (shard_names.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_file, ": \"weight_map\" lists no tensors"));
    }
  } else if (std::filesystem::exists(single_path, ec)) {
    shard_names.push_back("model.safetensors");
  } else {
    return absl::NotFoundError(absl::StrCat(
        "no checkpoint in ", dir.string(), ": neither ", single_path.string(),
        " nor ", index_path.string(), " exists"));
  }

  for (const std::string& shard : shard_names) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                     SafetensorsFile::Open(dir / shard));
    for (const TensorInfo& t : file->tensors()) {
      auto [it, inserted] = checkpoint.owner_.emplace(t.name, file.get());
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor \"", t.name, "\" appears in both ",
            it->second->path().string(), " and ", file->path().string()));
      }
    }
    checkpoint.files_.push_back(std::move(file));
  }
  // The index must agree with the shards, or a loader trusting it would
  // silently read a different tensor than the one the index promised.
  for (const auto& [tensor, shard] : weight_map.items()) {
    auto it = checkpoint.owner_.find(tensor);
    if (it == checkpoint.owner_.end() ||
        it->second->path().filename() != shard.get<std::string>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path.string(), ": tensor \"", tensor, "\" is listed in ",
          (dir / shard.get<std::string>()).string(), " but is not there"));
    }
  }
  return checkpoint;
}

bool Checkpoint::Has(std::string_view name) const {
  return owner_.find(name) != owner_.end();
}

std::optional<std::string> Checkpoint::FirstWithPrefix(
    std::string_view prefix) const {
  const auto it = owner_.lower_bound(prefix);
  if (it == owner_.end() || !it->first.starts_with(prefix)) return std::nullopt;
  return it->first;
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadF32(
    std::string_view name, std::span<const int64_t> expected_shape) const {
  const int64_t rows = expected_shape.empty() ? 1 : expected_shape[0];
  return ReadF32Block(name, expected_shape, 0, rows, 0,
                      MatrixCols(expected_shape));
}

absl::StatusOr<DType> Checkpoint::TensorDType(std::string_view name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor \"", std::string(name),
                                            "\" not found in ", dir_.string()));
  }
  return it->second->Find(name)->dtype;
}

absl::StatusOr<TensorBlock> Checkpoint::Block(
    std::string_view name, std::span<const int64_t> expected_shape,
    int64_t row_begin, int64_t row_end, int64_t col_begin,
    int64_t col_end) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) {
    std::vector<std::string> paths;
    for (const auto& file : files_) paths.push_back(file->path().string());
    return absl::NotFoundError(absl::StrCat("tensor \"", std::string(name),
                                            "\" not found in ",
                                            absl::StrJoin(paths, ", ")));
  }
  const SafetensorsFile& file = *it->second;
  const TensorInfo& info = *file.Find(name);
  if (!std::equal(info.shape.begin(), info.shape.end(), expected_shape.begin(),
                  expected_shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path().string(), ": tensor \"", std::string(name), "\" has shape ",
        ShapeString(info.shape), ", expected ", ShapeString(expected_shape)));
  }
  // The tensor as a matrix: its first dimension by the product of the rest.
  const int64_t rows = info.shape.empty() ? 1 : info.shape[0];
  const int64_t cols = MatrixCols(info.shape);
  if (row_begin < 0 || row_begin > row_end || row_end > rows || col_begin < 0 ||
      col_begin > col_end || col_end > cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path().string(), ": tensor \"", std::string(name), "\" of shape ",
        ShapeString(info.shape), " has no block rows [", row_begin, ", ",
        row_end, ") x columns [", col_begin, ", ", col_end, ")"));
  }
  const size_t element = DTypeSize(info.dtype);
  // A block of a tensor without rows is empty: it starts where the tensor
  // does (its columns may not even have an address).
  const int64_t first = rows == 0 ? 0 : row_begin * cols + col_begin;
  return TensorBlock{.data = file.Bytes(info).data() + first * element,
                     .dtype = info.dtype,
                     .rows = row_end - row_begin,
                     .cols = col_end - col_begin,
                     .row_stride = cols};
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadF32Block(
    std::string_view name, std::span<const int64_t> expected_shape,
    int64_t row_begin, int64_t row_end, int64_t col_begin,
    int64_t col_end) const {
  ASSIGN_OR_RETURN(
      const TensorBlock block,
      Block(name, expected_shape, row_begin, row_end, col_begin, col_end));
  const int64_t width = block.cols;
  std::vector<float> out(static_cast<size_t>(block.rows * width));
  // An empty tensor ([1, 0], say) has nothing to copy, and memcpy may not
  // be handed the null data() of an empty vector.
  if (out.empty()) return out;
  const size_t element = DTypeSize(block.dtype);
  float (*convert)(uint16_t) =
      block.dtype == DType::kF16 ? HalfToFloat : BFloat16ToFloat;
  for (int64_t r = 0; r < block.rows; ++r) {
    const std::byte* src = block.data + r * block.row_stride * element;
    float* dst = out.data() + r * width;
    if (block.dtype == DType::kF32) {
      std::memcpy(dst, src, width * sizeof(float));
      continue;
    }
    for (int64_t c = 0; c < width; ++c) {
      uint16_t half;
      std::memcpy(&half, src + 2 * c, sizeof(half));
      dst[c] = convert(half);
    }
  }
  return out;
}

absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorToWrite> tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  std::vector<int64_t> counts;
  for (const TensorToWrite& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(), ": tensor \"", t.name,
                         "\" has negative shape ", ShapeString(t.shape)));
      }
      n *= d;
    }
    if (t.generate ? !t.data.empty()
                   : static_cast<size_t>(n) != t.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ": tensor \"", t.name, "\" has shape ",
          ShapeString(t.shape), " (", n, " elements) but ", t.data.size(),
          " values", t.generate ? " and a generator" : ""));
    }
    if (t.name == "__metadata__" || header.contains(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": tensor name \"", t.name,
                       "\" is reserved or repeated"));
    }
    const uint64_t end = offset + static_cast<uint64_t>(n) * DTypeSize(t.dtype);
    header[t.name] = {{"dtype", DTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, end}}};
    offset = end;
    counts.push_back(n);
  }
  std::string header_text = header.dump();
  // Padding keeps the data area 8-byte aligned in the mapping.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  // Written aside and renamed, so a reader never maps a half-written file.
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const uint64_t header_len = header_text.size();
    out.write(reinterpret_cast<const char*>(&header_len), sizeof(header_len));
    out.write(header_text.data(),
              static_cast<std::streamsize>(header_text.size()));
    // Chunks bound the memory a generated tensor needs; 1M values keep the
    // per-call overhead negligible.
    constexpr int64_t kChunk = int64_t{1} << 20;
    std::vector<float> values;
    std::vector<uint16_t> halves;
    for (size_t i = 0; i < tensors.size() && out; ++i) {
      const TensorToWrite& t = tensors[i];
      for (int64_t begin = 0; begin < counts[i] && out; begin += kChunk) {
        const int64_t len = std::min(kChunk, counts[i] - begin);
        std::span<const float> chunk;
        if (t.generate) {
          values.resize(len);
          t.generate(begin, values);
          chunk = values;
        } else {
          chunk = t.data.subspan(begin, len);
        }
        if (t.dtype == DType::kF32) {
          out.write(reinterpret_cast<const char*>(chunk.data()),
                    static_cast<std::streamsize>(chunk.size_bytes()));
          continue;
        }
        halves.resize(len);
        // Two loops, not a function pointer: inlined, the BF16 one
        // vectorizes, and a billion-value model converts in about a second.
        if (t.dtype == DType::kBF16) {
          for (int64_t j = 0; j < len; ++j)
            halves[j] = FloatToBFloat16(chunk[j]);
        } else {
          for (int64_t j = 0; j < len; ++j) halves[j] = FloatToHalf(chunk[j]);
        }
        out.write(reinterpret_cast<const char*>(halves.data()),
                  static_cast<std::streamsize>(len * sizeof(uint16_t)));
      }
    }
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return absl::UnavailableError(
          absl::StrCat(tmp.string(), ": write failed"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp.string(), " to ", path.string(),
                     ": ", ec.message()));
    std::filesystem::remove(tmp, ec);
    return status;
  }
  return absl::OkStatus();
}

}  // namespace hydra::model
