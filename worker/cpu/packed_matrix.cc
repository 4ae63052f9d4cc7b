// Packing weights into the GEMM's panel layouts (kernels.h), straight from
// the checkpoint's memory: one pass over the source, spread over all cores.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "worker/cpu/kernels.h"
#include "worker/cpu/number_formats.h"

namespace hydra::cpu {
namespace {

constexpr int kPanel = PackedMatrix::kPanel;
constexpr int kInt8Panel = PackedMatrix::kInt8Panel;
constexpr int kInt8Block = PackedMatrix::kInt8Block;

size_t ElementSize(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 4;
    case WeightType::kBF16:
    case WeightType::kF16:
      return 2;
    case WeightType::kInt8:
      return 1;
  }
  return 4;
}

// Element (r, c) of a checkpoint block in fp32.
float SourceValue(const model::TensorBlock& b, int64_t r, int64_t c) {
  const int64_t i = r * b.row_stride + c;
  switch (b.dtype) {
    case model::DType::kF32: {
      float v;
      std::memcpy(&v, b.data + 4 * i, 4);
      return v;
    }
    case model::DType::kBF16: {
      Bf16 v;
      std::memcpy(&v, b.data + 2 * i, 2);
      return ToFloat(v);
    }
    case model::DType::kF16: {
      F16 v;
      std::memcpy(&v, b.data + 2 * i, 2);
      return ToFloat(v);
    }
  }
  return 0.0f;
}

// Where column `lane` of a 16-wide BF16 panel row is stored: matmul.cc widens
// a row with unpacklo/unpackhi_epi16, which take words 0-3 and 8-11 (lo) and
// 4-7 and 12-15 (hi) of the 256-bit register.
int Bf16Slot(int lane) {
  if (lane >= 4 && lane < 8) return lane + 4;
  if (lane >= 8 && lane < 12) return lane - 4;
  return lane;
}

template <typename T>
T Convert(float v) {
  if constexpr (std::is_same_v<T, Bf16>) {
    return ToBf16(v);
  } else if constexpr (std::is_same_v<T, F16>) {
    return ToF16(v);
  } else {
    return v;
  }
}

template <typename T>
void PackFloatPanel(const model::TensorBlock& part, int64_t r_begin,
                    int64_t r_end, int64_t first_row, int k, T* panel) {
  for (int64_t r = r_begin; r < r_end; ++r) {
    int lane = int((first_row + r) % kPanel);
    if constexpr (std::is_same_v<T, Bf16>) lane = Bf16Slot(lane);
    for (int kk = 0; kk < k; ++kk) {
      panel[size_t(kk) * kPanel + lane] = Convert<T>(SourceValue(part, r, kk));
    }
  }
}

// Symmetric quantisation of one row's block: scale = max|w| / 127.
void QuantizeBlock(const model::TensorBlock& part, int64_t r, int k0, int k,
                   int8_t* q, float* scale) {
  float values[kInt8Block] = {};
  float amax = 0.0f;
  for (int i = 0; i < kInt8Block && k0 + i < k; ++i) {
    values[i] = SourceValue(part, r, k0 + i);
    amax = std::max(amax, std::fabs(values[i]));
  }
  *scale = amax / 127.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int i = 0; i < kInt8Block; ++i) {
    q[i] = static_cast<int8_t>(std::lrint(values[i] * inv));
  }
}

}  // namespace

std::string_view WeightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "fp32";
    case WeightType::kBF16:
      return "bf16";
    case WeightType::kF16:
      return "f16";
    case WeightType::kInt8:
      return "int8";
  }
  return "?";
}

PackedMatrix::PackedMatrix(WeightType type, int n, int k)
    : type_(type), n_(n), k_(k) {
  if (n < 0 || k < 0) throw std::invalid_argument("PackedMatrix: n, k < 0");
  if (type == WeightType::kInt8) {
    data_ = AlignedBuffer<std::byte>(size_t(num_panels()) * k_blocks() *
                                     kInt8Panel * kInt8Block);
    scales_ =
        AlignedBuffer<float>(size_t(num_panels()) * k_blocks() * kInt8Panel);
  } else {
    data_ = AlignedBuffer<std::byte>(size_t(num_panels()) * k * kPanel *
                                     ElementSize(type));
  }
}

PackedMatrix::PackedMatrix(std::span<const float> w, int n, int k,
                           WeightType type)
    : PackedMatrix(type, n, k) {
  if (w.size() < size_t(n) * k) {
    throw std::invalid_argument("PackedMatrix: weight smaller than n x k");
  }
  PackRows({.data = reinterpret_cast<const std::byte*>(w.data()),
            .dtype = model::DType::kF32,
            .rows = n,
            .cols = k,
            .row_stride = k},
           0);
}

PackedMatrix PackedMatrix::Pack(
    std::span<const model::TensorBlock> parts, WeightType type, int min_rows,
    const std::function<void(const model::TensorBlock&)>& on_packed) {
  int64_t total = 0;
  const int64_t k = parts.empty() ? 0 : parts[0].cols;
  for (const model::TensorBlock& part : parts) {
    if (part.cols != k) {
      throw std::invalid_argument("PackedMatrix::Pack: parts differ in cols");
    }
    total += part.rows;
  }
  PackedMatrix packed(type, int(std::max<int64_t>(total, min_rows)), int(k));
  int64_t first = 0;
  for (const model::TensorBlock& part : parts) {
    packed.PackRows(part, int(first));
    if (on_packed) on_packed(part);
    first += part.rows;
  }
  return packed;
}

void PackedMatrix::PackRows(const model::TensorBlock& part, int first_row) {
  const int64_t count = part.rows;
  if (count == 0 || k_ == 0) return;
  const int rows_per_panel = panel_rows();
  const int p_begin = first_row / rows_per_panel;
  const int p_end = int((first_row + count - 1) / rows_per_panel + 1);
  // Packing a large model's weights is most of its start-up time.
#pragma omp parallel for schedule(dynamic, 4) if (count * k_ > (1 << 20))
  for (int p = p_begin; p < p_end; ++p) {
    // Source rows of this part that land in panel p.
    const int64_t r_begin =
        std::max<int64_t>(0, int64_t{p} * rows_per_panel - first_row);
    const int64_t r_end =
        std::min<int64_t>(count, int64_t{p + 1} * rows_per_panel - first_row);
    switch (type_) {
      case WeightType::kF32:
        PackFloatPanel(part, r_begin, r_end, first_row, k_,
                       const_cast<float*>(panel<float>(p)));
        break;
      case WeightType::kBF16:
        PackFloatPanel(part, r_begin, r_end, first_row, k_,
                       const_cast<Bf16*>(panel<Bf16>(p)));
        break;
      case WeightType::kF16:
        PackFloatPanel(part, r_begin, r_end, first_row, k_,
                       const_cast<F16*>(panel<F16>(p)));
        break;
      case WeightType::kInt8: {
        int8_t* q = const_cast<int8_t*>(int8_panel(p));
        float* s = const_cast<float*>(int8_scales(p));
        for (int64_t r = r_begin; r < r_end; ++r) {
          const int lane = int((first_row + r) % kInt8Panel);
          for (int b = 0; b < k_blocks(); ++b) {
            QuantizeBlock(part, r, b * kInt8Block, k_,
                          q + (size_t(b) * kInt8Panel + lane) * kInt8Block,
                          s + size_t(b) * kInt8Panel + lane);
          }
        }
        break;
      }
    }
  }
}

void PackedMatrix::ReadRow(int r, float* out) const {
  if (type_ == WeightType::kInt8) {
    const int p = r / kInt8Panel, lane = r % kInt8Panel;
    const int8_t* q = int8_panel(p);
    const float* s = int8_scales(p);
    for (int kk = 0; kk < k_; ++kk) {
      const int b = kk / kInt8Block;
      out[kk] =
          s[b * kInt8Panel + lane] *
          q[(size_t(b) * kInt8Panel + lane) * kInt8Block + kk % kInt8Block];
    }
    return;
  }
  const int p = r / kPanel, lane = r % kPanel;
  auto read = [&](const auto* values, int slot) {
    for (int kk = 0; kk < k_; ++kk) {
      out[kk] = ToFloat(values[size_t(kk) * kPanel + slot]);
    }
  };
  switch (type_) {
    case WeightType::kF32:
      return read(panel<float>(p), lane);
    case WeightType::kBF16:
      return read(panel<Bf16>(p), Bf16Slot(lane));
    case WeightType::kF16:
      return read(panel<F16>(p), lane);
    case WeightType::kInt8:
      return;
  }
}

}  // namespace hydra::cpu
