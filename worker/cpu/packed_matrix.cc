// Packing weights into the GEMM's panel layouts (kernels.h), straight from
// the checkpoint's memory: one pass over the source, spread over all cores.
#include <immintrin.h>
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

// The checkpoint's element type for each model::DType.
template <typename Src>
void PackFloatPanelFrom(const model::TensorBlock& part, int64_t r_begin,
                        int64_t r_end, int64_t first_row, int k, auto* panel) {
  using Dst = std::remove_pointer_t<decltype(panel)>;
  const auto* src = reinterpret_cast<const Src*>(part.data);
  // k in slices, so the panel slice being written stays in L1 while each
  // source row is read front to back.
  constexpr int kSlice = 256;
  for (int k0 = 0; k0 < k; k0 += kSlice) {
    const int k1 = std::min(k, k0 + kSlice);
    for (int64_t r = r_begin; r < r_end; ++r) {
      int lane = int((first_row + r) % kPanel);
      if constexpr (std::is_same_v<Dst, Bf16>) lane = Bf16Slot(lane);
      const Src* row = src + r * part.row_stride;
      Dst* out = panel + lane;
      for (int kk = k0; kk < k1; ++kk) {
        if constexpr (std::is_same_v<Src, Dst>) {
          out[size_t(kk) * kPanel] = row[kk];  // same format: a copy
        } else {
          out[size_t(kk) * kPanel] = Convert<Dst>(ToFloat(row[kk]));
        }
      }
    }
  }
}

template <typename T>
void PackFloatPanel(const model::TensorBlock& part, int64_t r_begin,
                    int64_t r_end, int64_t first_row, int k, T* panel) {
  switch (part.dtype) {
    case model::DType::kF32:
      return PackFloatPanelFrom<float>(part, r_begin, r_end, first_row, k,
                                       panel);
    case model::DType::kBF16:
      return PackFloatPanelFrom<Bf16>(part, r_begin, r_end, first_row, k,
                                      panel);
    case model::DType::kF16:
      return PackFloatPanelFrom<F16>(part, r_begin, r_end, first_row, k, panel);
  }
}

// Symmetric quantisation of one row, block by block: scale = max|w| / 127,
// q = round-to-nearest-even(w / scale). Block b's 32 values go to
// q + b * block_stride, its scale to scale[b * scale_stride].
template <typename Src>
void QuantizeRow(const Src* row, int k, int k_blocks, int8_t* q,
                 size_t block_stride, float* scale, size_t scale_stride) {
  for (int b = 0; b < k_blocks; ++b) {
    alignas(32) float values[kInt8Block] = {};
    const int k0 = b * kInt8Block, n = std::min(kInt8Block, k - k0);
    float amax = 0.0f;
    for (int i = 0; i < n; ++i) {
      values[i] = ToFloat(row[k0 + i]);
      amax = std::max(amax, std::fabs(values[i]));
    }
    scale[b * scale_stride] = amax / 127.0f;
    const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    int8_t* out = q + b * block_stride;
    for (int i = 0; i < kInt8Block; i += 8) {
      // cvtps rounds to nearest even, as lrint does in the default mode.
      alignas(32) int32_t ints[8];
      _mm256_store_si256(
          reinterpret_cast<__m256i*>(ints),
          _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(values + i), inv)));
      for (int j = 0; j < 8; ++j) out[i + j] = static_cast<int8_t>(ints[j]);
    }
  }
}

void QuantizePanel(const model::TensorBlock& part, int64_t r_begin,
                   int64_t r_end, int64_t first_row, int k, int k_blocks,
                   int8_t* q, float* scales) {
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int lane = int((first_row + r) % kInt8Panel);
    int8_t* q_lane = q + size_t(lane) * kInt8Block;
    float* s_lane = scales + lane;
    const size_t block_stride = size_t(kInt8Panel) * kInt8Block;
    const std::byte* row =
        part.data + r * part.row_stride * model::DTypeSize(part.dtype);
    switch (part.dtype) {
      case model::DType::kF32:
        QuantizeRow(reinterpret_cast<const float*>(row), k, k_blocks, q_lane,
                    block_stride, s_lane, kInt8Panel);
        break;
      case model::DType::kBF16:
        QuantizeRow(reinterpret_cast<const Bf16*>(row), k, k_blocks, q_lane,
                    block_stride, s_lane, kInt8Panel);
        break;
      case model::DType::kF16:
        QuantizeRow(reinterpret_cast<const F16*>(row), k, k_blocks, q_lane,
                    block_stride, s_lane, kInt8Panel);
        break;
    }
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
      case WeightType::kInt8:
        QuantizePanel(part, r_begin, r_end, first_row, k_, k_blocks(),
                      const_cast<int8_t*>(int8_panel(p)),
                      const_cast<float*>(int8_scales(p)));
        break;
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
