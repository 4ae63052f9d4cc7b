// Matrix products through cuBLAS: y[m, n] = x[m, k] · Wᵀ with W stored
// [n, k] row-major (a Linear's weight, as on the CPU). BF16 operands with
// fp32 accumulation (tensor cores), or fp32 throughout for exact tests; the
// output may be fp32 even when the operands are BF16 (the row-parallel
// products feed fp32 collectives and the fp32 residual stream).
#ifndef HYDRA_WORKER_CUDA_GEMM_H_
#define HYDRA_WORKER_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "absl/status/statusor.h"
#include "worker/cuda/device_buffer.h"

namespace hydra::gpu {

enum class DType { kF32, kBF16 };

class Blas {
 public:
  // A handle bound to `stream`, with its own workspace so that products can
  // be captured into CUDA graphs.
  static absl::StatusOr<std::unique_ptr<Blas>> Create(cudaStream_t stream);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // x rows are x_stride elements apart, y rows y_stride apart. x and w share
  // `operands`; y is `out`.
  absl::Status Gemm(const void* x, int m, int k, int x_stride, const void* w,
                    int n, DType operands, void* y, int y_stride,
                    DType out) const;

 private:
  Blas(cublasHandle_t handle, DeviceBuffer<char> workspace)
      : handle_(handle), workspace_(std::move(workspace)) {}
  cublasHandle_t handle_;
  DeviceBuffer<char> workspace_;
};

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_GEMM_H_
