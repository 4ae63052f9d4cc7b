// The CPU kernel set the forward pass is written against (fp32 activations,
// fp32/bf16/f16/int8 weights, AVX2/FMA/F16C, multithreaded with OpenMP). Every
// kernel works on a flat batch of `m` token rows, so one call serves prefill
// chunks and decode tokens alike.
#ifndef HYDRA_WORKER_CPU_KERNELS_H_
#define HYDRA_WORKER_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"
#include "worker/cpu/aligned_buffer.h"

namespace hydra::cpu {

// How a PackedMatrix stores its weights. kF32/kBF16/kF16 keep one value per
// weight and the GEMM converts on the fly, accumulating in fp32. kInt8 is
// symmetric per-block quantisation along k (blocks of kInt8Block, one fp32
// scale each, like the Q8_0 format): the GEMM quantises the activations the
// same way and multiplies with int8 dot products.
enum class WeightType { kF32, kBF16, kF16, kInt8 };
std::string_view WeightTypeName(WeightType type);  // "fp32", "bf16", ...

// A weight matrix W[n, k] (row-major, as Hugging Face stores a Linear's
// weight) repacked for the GEMM micro-kernels, in panels of consecutive
// output rows zero padded to a whole panel:
//  * float types: panels of kPanel rows stored k-major ([k][kPanel]). Decode
//    streams each panel once, front to back; batched rows reuse a panel from
//    L1/L2 while it is hot. BF16 lanes are stored so that two unpacks widen
//    them in column order (see matmul.cc).
//  * kInt8: panels of kInt8Panel rows; per block of kInt8Block k steps, the
//    panel's rows one after another (kInt8Panel x 32 bytes), and the scales
//    apart ([panel][block][kInt8Panel] floats).
class PackedMatrix {
 public:
  static constexpr int kPanel = 16;
  static constexpr int kInt8Panel = 4;
  static constexpr int kInt8Block = 32;

  PackedMatrix() = default;
  // Packs `w` (n * k floats, row-major).
  PackedMatrix(std::span<const float> w, int n, int k,
               WeightType type = WeightType::kF32);
  // Packs the row-wise concatenation of blocks that share their column count
  // (e.g. Q, K and V projections into one QKV matrix), straight from the
  // checkpoint's memory in one pass; rows past the parts up to `min_rows`
  // are zero (a padded vocabulary slice).
  // `on_packed`, when set, is called with each part once it is packed and
  // the number of its values that are NaN or Inf as packed (counted in the
  // packing pass; for kInt8, in the source): a loader drops the part's
  // source pages there and tallies non-finite weights.
  using OnPacked =
      std::function<void(const model::TensorBlock& part, int64_t non_finite)>;
  static PackedMatrix Pack(std::span<const model::TensorBlock> parts,
                           WeightType type, int min_rows = 0,
                           const OnPacked& on_packed = {});

  WeightType type() const { return type_; }
  int rows() const { return n_; }
  int cols() const { return k_; }
  int panel_rows() const {
    return type_ == WeightType::kInt8 ? kInt8Panel : kPanel;
  }
  int num_panels() const { return (n_ + panel_rows() - 1) / panel_rows(); }
  int k_blocks() const { return (k_ + kInt8Block - 1) / kInt8Block; }
  // Float types: panel p's [k][kPanel] values of type T.
  template <typename T>
  const T* panel(int p) const {
    return reinterpret_cast<const T*>(data_.data()) + size_t(p) * k_ * kPanel;
  }
  // kInt8: panel p's quantised blocks and their scales.
  const int8_t* int8_panel(int p) const {
    return reinterpret_cast<const int8_t*>(data_.data()) +
           size_t(p) * k_blocks() * kInt8Panel * kInt8Block;
  }
  const float* int8_scales(int p) const {
    return scales_.data() + size_t(p) * k_blocks() * kInt8Panel;
  }
  // Row r in fp32 (dequantised): lets a tied lm_head serve as the embedding
  // table too, so the vocabulary is stored once.
  void ReadRow(int r, float* out) const;
  // Resident bytes of the packed values and scales.
  size_t bytes() const { return data_.size() + scales_.size() * sizeof(float); }

 private:
  PackedMatrix(WeightType type, int n, int k);
  // Packs `part` as rows first_row.. of this matrix; returns the number of
  // its values that are NaN or Inf.
  int64_t PackRows(const model::TensorBlock& part, int first_row);

  WeightType type_ = WeightType::kF32;
  int n_ = 0;
  int k_ = 0;
  AlignedBuffer<std::byte> data_;
  AlignedBuffer<float> scales_;
};

// y[m, n] = x[m, k] · Wᵀ (+ bias[n] when bias is non-null). x rows are
// `x_stride` floats apart, y rows `y_stride` floats apart.
void MatMul(const float* x, int m, int x_stride, const PackedMatrix& w,
            const float* bias, float* y, int y_stride);

// out[i] = x[i] / rms(x[i]) * weight, per row of `dim` floats.
void RmsNorm(const float* x, const float* weight, int m, int dim, float eps,
             float* out);

// The rotary inverse frequencies inv_freq[j], j < head_dim/2, in double:
// theta^(-2j/head_dim), then Hugging Face's rope_scaling. kLinear divides each
// by factor. kLlama3 (transformers' _compute_llama3_parameters), with
// wavelen = 2π / inv_freq and L = original_max_position_embeddings: above
// L / low_freq_factor divide by factor, below L / high_freq_factor keep, and
// in between blend with smooth = (L / wavelen − low) / (high − low):
// (1 − smooth) · inv_freq / factor + smooth · inv_freq.
// Throws std::invalid_argument on an odd head_dim or invalid scaling.
std::vector<double> RopeInverseFrequencies(int head_dim, double theta,
                                           const model::RopeScaling& scaling);

// Rotary embedding, rotate-half layout (Hugging Face): within each head, the
// pair (j, j + head_dim/2) is rotated by angle position * inv_freq[j]
// (RopeInverseFrequencies). Applies in place to `num_heads` heads of each of
// `m` rows (row stride `stride` floats). cos/sin come from a RopeTable.
class RopeTable {
 public:
  RopeTable(int max_positions, int head_dim, float theta,
            const model::RopeScaling& scaling);
  const float* cos(int position) const {
    return cos_.data() + size_t(position) * half_;
  }
  const float* sin(int position) const {
    return sin_.data() + size_t(position) * half_;
  }
  int head_dim() const { return 2 * half_; }
  int max_positions() const { return max_positions_; }

 private:
  int max_positions_;
  int half_;
  std::vector<float> cos_;
  std::vector<float> sin_;
};
void ApplyRope(float* x, int m, int stride, int num_heads,
               const int32_t* positions, const RopeTable& table);

// out[i, j] = silu(gate_up[i, j]) * gate_up[i, hidden + j]; gate_up rows hold
// the gate then the up projection (2 * hidden floats).
void SiluMul(const float* gate_up, int m, int hidden, float* out);

// x[i] += y[i] for n floats.
void AddInPlace(float* x, const float* y, size_t n);

// out[i, :] = row ids[i] - first_row of `table` in fp32 when that row is in
// [first_row, first_row + table.rows()), zeros otherwise (a vocabulary-
// parallel rank fills only its slice's tokens).
void EmbeddingLookup(const PackedMatrix& table, int first_row,
                     const int32_t* ids, int m, float* out);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_KERNELS_H_
