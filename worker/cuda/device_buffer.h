// Owning device memory: cudaMalloc on Create, cudaFree on destruction.
// Move-only; a moved-from buffer owns nothing.
#ifndef HYDRA_WORKER_CUDA_DEVICE_BUFFER_H_
#define HYDRA_WORKER_CUDA_DEVICE_BUFFER_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <utility>

#include "absl/status/statusor.h"
#include "worker/cuda/cuda_status.h"

namespace hydra::gpu {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static absl::StatusOr<DeviceBuffer> Create(size_t count) {
    DeviceBuffer buffer;
    if (count == 0) return buffer;
    void* ptr = nullptr;
    if (absl::Status s =
            CudaStatus(cudaMalloc(&ptr, count * sizeof(T)), "cudaMalloc");
        !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (",
                                                 count * sizeof(T), " bytes)"));
    }
    buffer.data_ = static_cast<T*>(ptr);
    buffer.size_ = count;
    return buffer;
  }
  // Allocates and copies `host` in (synchronously).
  static absl::StatusOr<DeviceBuffer> FromHost(std::span<const T> host) {
    absl::StatusOr<DeviceBuffer> buffer = Create(host.size());
    if (!buffer.ok() || host.empty()) return buffer;
    absl::Status s =
        CudaStatus(cudaMemcpy(buffer->data(), host.data(), host.size_bytes(),
                              cudaMemcpyHostToDevice),
                   "cudaMemcpy to device");
    if (!s.ok()) return s;
    return buffer;
  }

  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }

 private:
  void Reset() {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_DEVICE_BUFFER_H_
