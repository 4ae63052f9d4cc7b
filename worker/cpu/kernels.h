// The CPU kernel set the forward pass is written against (fp32, AVX2/FMA,
// multithreaded with OpenMP). Every kernel works on a flat batch of `m`
// token rows, so one call serves prefill chunks and decode tokens alike.
#ifndef HYDRA_WORKER_CPU_KERNELS_H_
#define HYDRA_WORKER_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"
#include "worker/cpu/aligned_buffer.h"

namespace hydra::cpu {

// A weight matrix W[n, k] (row-major, as Hugging Face stores a Linear's
// weight) repacked for the GEMM micro-kernel: panels of kPanel consecutive
// output rows, each stored k-major ([n_panels][k][kPanel]), zero padded to a
// whole panel. Decode streams each panel once, front to back; batched rows
// reuse a panel from L1/L2 while it is hot.
class PackedMatrix {
 public:
  static constexpr int kPanel = 16;

  PackedMatrix() = default;
  // Packs `w` (n * k floats, row-major).
  PackedMatrix(std::span<const float> w, int n, int k);
  // Packs the row-wise concatenation of several matrices that share k (e.g.
  // Q, K and V projections into one QKV matrix).
  static PackedMatrix Concat(std::span<const std::span<const float>> parts,
                             std::span<const int> rows, int k);

  int rows() const { return n_; }
  int cols() const { return k_; }
  const float* panel(int p) const {
    return data_.data() + size_t(p) * k_ * kPanel;
  }
  size_t bytes() const { return size_t(n_) * k_ * sizeof(float); }

 private:
  // Packs `count` rows of row-major `w` as rows first_row.. of this matrix.
  void PackRows(const float* w, int first_row, int count);

  int n_ = 0;
  int k_ = 0;
  AlignedBuffer<float> data_;
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

// out[i, :] = table[ids[i], :], dim floats per row.
void EmbeddingLookup(const float* table, const int32_t* ids, int m, int dim,
                     float* out);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_KERNELS_H_
