// Packing weights into the GEMM's panel layouts (kernels.h), straight from
// the checkpoint's memory: one pass over the source, spread over all cores.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <bit>
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

// Non-finite weights are counted from the source values, in a pass of its
// own over each slice just read (still in L1, and vectorised: about one
// instruction a weight) rather than in the packing loop, where a check per
// value made f16 packing visibly slower. A source value is not finite once
// packed when its magnitude, as an absolute bit pattern, reaches the limit
// for the source and packed formats: NaN and Inf, and values that round
// beyond the packed format's range.
// (Signed: a sign bit cleared, the compare is one vector instruction.)
int32_t AbsBits(float x) { return std::bit_cast<int32_t>(x) & 0x7fffffff; }
int16_t AbsBits(Bf16 x) { return static_cast<int16_t>(x.bits & 0x7fff); }
int16_t AbsBits(F16 x) { return static_cast<int16_t>(x.bits & 0x7fff); }

template <typename Src, typename Dst>
constexpr int32_t NonFiniteLimit() {
  if constexpr (std::is_same_v<Src, float>) {
    if constexpr (std::is_same_v<Dst, Bf16>) return 0x7f7f8000;  // to Inf
    if constexpr (std::is_same_v<Dst, F16>) return 0x477ff000;   // 65520
    return 0x7f800000;
  } else if constexpr (std::is_same_v<Src, Bf16>) {
    if constexpr (std::is_same_v<Dst, F16>) return 0x4780;  // 65536
    return 0x7f80;
  } else {
    return 0x7c00;  // f16 converts exactly to every other format
  }
}

// How many of values[0, n) are not finite once packed as Dst (float for
// int8, whose blocks are garbage when a source value is not finite).
template <typename Dst, typename Src>
int64_t CountNonFinite(const Src* values, int n) {
  constexpr auto kLimit =
      static_cast<decltype(AbsBits(Src{}))>(NonFiniteLimit<Src, Dst>());
  int count = 0;
  for (int i = 0; i < n; ++i) count += AbsBits(values[i]) >= kLimit;
  return count;
}

// The checkpoint's element type for each model::DType. Returns how many of
// the values packed are not finite.
template <typename Src>
int64_t PackFloatPanelFrom(const model::TensorBlock& part, int64_t r_begin,
                           int64_t r_end, int64_t first_row, int k,
                           auto* panel) {
  using Dst = std::remove_pointer_t<decltype(panel)>;
  int64_t non_finite = 0;
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
      non_finite += CountNonFinite<Dst>(row + k0, k1 - k0);
    }
  }
  return non_finite;
}

template <typename T>
int64_t PackFloatPanel(const model::TensorBlock& part, int64_t r_begin,
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
  return 0;
}

// Symmetric quantisation of one row, block by block: scale = max|w| / 127,
// q = round-to-nearest-even(w / scale). Block b's 32 values go to
// q + b * block_stride, its scale to scale[b * scale_stride]. Returns how
// many of the row's values are not finite.
template <typename Src>
int64_t QuantizeRow(const Src* row, int k, int k_blocks, int8_t* q,
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
  return CountNonFinite<float>(row, k);
}

int64_t QuantizePanel(const model::TensorBlock& part, int64_t r_begin,
                      int64_t r_end, int64_t first_row, int k, int k_blocks,
                      int8_t* q, float* scales) {
  int64_t non_finite = 0;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int lane = int((first_row + r) % kInt8Panel);
    int8_t* q_lane = q + size_t(lane) * kInt8Block;
    float* s_lane = scales + lane;
    const size_t block_stride = size_t(kInt8Panel) * kInt8Block;
    const std::byte* row =
        part.data + r * part.row_stride * model::DTypeSize(part.dtype);
    switch (part.dtype) {
      case model::DType::kF32:
        non_finite +=
            QuantizeRow(reinterpret_cast<const float*>(row), k, k_blocks,
                        q_lane, block_stride, s_lane, kInt8Panel);
        break;
      case model::DType::kBF16:
        non_finite +=
            QuantizeRow(reinterpret_cast<const Bf16*>(row), k, k_blocks, q_lane,
                        block_stride, s_lane, kInt8Panel);
        break;
      case model::DType::kF16:
        non_finite +=
            QuantizeRow(reinterpret_cast<const F16*>(row), k, k_blocks, q_lane,
                        block_stride, s_lane, kInt8Panel);
        break;
    }
  }
  return non_finite;
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

PackedMatrix PackedMatrix::Pack(std::span<const model::TensorBlock> parts,
                                WeightType type, int min_rows,
                                const OnPacked& on_packed) {
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
    const int64_t non_finite = packed.PackRows(part, int(first));
    if (on_packed) on_packed(part, non_finite);
    first += part.rows;
  }
  return packed;
}

int64_t PackedMatrix::PackRows(const model::TensorBlock& part, int first_row) {
  const int64_t count = part.rows;
  if (count == 0 || k_ == 0) return 0;
  const int rows_per_panel = panel_rows();
  const int p_begin = first_row / rows_per_panel;
  const int p_end = int((first_row + count - 1) / rows_per_panel + 1);
  // Packing a large model's weights is most of its start-up time.
  int64_t non_finite = 0;
#pragma omp parallel for schedule(dynamic, 4) if (count * k_ > (1 << 20)) \
    reduction(+ : non_finite)
  for (int p = p_begin; p < p_end; ++p) {
    // Source rows of this part that land in panel p.
    const int64_t r_begin =
        std::max<int64_t>(0, int64_t{p} * rows_per_panel - first_row);
    const int64_t r_end =
        std::min<int64_t>(count, int64_t{p + 1} * rows_per_panel - first_row);
    switch (type_) {
      case WeightType::kF32:
        non_finite += PackFloatPanel(part, r_begin, r_end, first_row, k_,
                                     const_cast<float*>(panel<float>(p)));
        break;
      case WeightType::kBF16:
        non_finite += PackFloatPanel(part, r_begin, r_end, first_row, k_,
                                     const_cast<Bf16*>(panel<Bf16>(p)));
        break;
      case WeightType::kF16:
        non_finite += PackFloatPanel(part, r_begin, r_end, first_row, k_,
                                     const_cast<F16*>(panel<F16>(p)));
        break;
      case WeightType::kInt8:
        non_finite +=
            QuantizePanel(part, r_begin, r_end, first_row, k_, k_blocks(),
                          const_cast<int8_t*>(int8_panel(p)),
                          const_cast<float*>(int8_scales(p)));
        break;
    }
  }
  return non_finite;
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
