#include "worker/cuda/gemm.h"

#include "absl/memory/memory.h"
#include "common/status_macros.h"
#include "worker/cuda/cuda_status.h"

namespace hydra::gpu {
namespace {

// cuBLAS's own recommendation for Hopper; plenty for Ampere.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cudaDataType_t CudaType(DType t) {
  return t == DType::kF32 ? CUDA_R_32F : CUDA_R_16BF;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Blas>> Blas::Create(cudaStream_t stream) {
  ASSIGN_OR_RETURN(auto workspace, DeviceBuffer<char>::Create(kWorkspaceBytes));
  cublasHandle_t handle = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasCreate(&handle));
  auto blas = absl::WrapUnique(new Blas(handle, std::move(workspace)));
  CUBLAS_RETURN_IF_ERROR(cublasSetStream(handle, stream));
  CUBLAS_RETURN_IF_ERROR(cublasSetWorkspace(handle, blas->workspace_.data(),
                                            blas->workspace_.bytes()));
  // FP32 products stay FP32 (no TF32): the golden test compares at 1e-5.
  CUBLAS_RETURN_IF_ERROR(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
  return blas;
}

Blas::~Blas() { cublasDestroy(handle_); }

absl::Status Blas::Gemm(const void* x, int m, int k, int x_stride,
                        const void* w, int n, DType operands, void* y,
                        int y_stride, DType out) const {
  if (m == 0) return absl::OkStatus();
  // Column-major view: Yᵀ[n, m] = W[n, k] (W as stored is Wᵀ col-major, so
  // op T) · Xᵀ[k, m] (X row-major is Xᵀ col-major, op N).
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_RETURN_IF_ERROR(cublasGemmEx(
      handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, CudaType(operands),
      k, x, CudaType(operands), x_stride, &beta, y, CudaType(out), y_stride,
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

}  // namespace hydra::gpu
