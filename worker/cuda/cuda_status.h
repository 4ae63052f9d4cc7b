// CUDA, cuBLAS and NCCL result codes as absl::Status, and early-return
// macros over them. The message names the call that failed.
#ifndef HYDRA_WORKER_CUDA_CUDA_STATUS_H_
#define HYDRA_WORKER_CUDA_CUDA_STATUS_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hydra::gpu {

inline absl::Status CudaStatus(cudaError_t code, const char* what) {
  if (code == cudaSuccess) return absl::OkStatus();
  const absl::StatusCode kind = code == cudaErrorMemoryAllocation
                                    ? absl::StatusCode::kResourceExhausted
                                    : absl::StatusCode::kInternal;
  return absl::Status(kind, absl::StrCat(what, ": ", cudaGetErrorName(code),
                                         " (", cudaGetErrorString(code), ")"));
}

inline absl::Status CublasStatus(cublasStatus_t code, const char* what) {
  if (code == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cublasGetStatusName(code),
                                          " (", cublasGetStatusString(code),
                                          ")"));
}

}  // namespace hydra::gpu

// Returns a Status from the enclosing function when a CUDA call fails.
#define CUDA_RETURN_IF_ERROR(expr)                           \
  do {                                                       \
    ::absl::Status hydra_cuda_status_ =                      \
        ::hydra::gpu::CudaStatus((expr), #expr);             \
    if (!hydra_cuda_status_.ok()) return hydra_cuda_status_; \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(expr)                             \
  do {                                                           \
    ::absl::Status hydra_cublas_status_ =                        \
        ::hydra::gpu::CublasStatus((expr), #expr);               \
    if (!hydra_cublas_status_.ok()) return hydra_cublas_status_; \
  } while (0)

#endif  // HYDRA_WORKER_CUDA_CUDA_STATUS_H_
