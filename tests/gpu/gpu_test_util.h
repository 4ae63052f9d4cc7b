// Helpers for the GPU tests: skip without a device, move float vectors to
// and from the device in either storage type, and compare with the CPU.
#ifndef HYDRA_TESTS_GPU_GPU_TEST_UTIL_H_
#define HYDRA_TESTS_GPU_GPU_TEST_UTIL_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "worker/cuda/device_buffer.h"
#include "worker/cuda/device_weights.h"
#include "worker/cuda/kernels.h"

namespace hydra::gpu::testing {

inline bool HasCudaDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// Skips the calling test (reported as skipped, never passed) when no CUDA
// device is present.
#define HYDRA_REQUIRE_GPU()                                                \
  do {                                                                     \
    if (!::hydra::gpu::testing::HasCudaDevice()) {                         \
      GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none); " \
                      "run tests/gpu/run.sh on a GPU machine";             \
    }                                                                      \
  } while (0)

// Storage type traits: the tolerance the issue sets for each path.
template <typename T>
constexpr double Tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}
template <typename T>
constexpr DType DTypeOf() {
  return std::is_same_v<T, float> ? DType::kF32 : DType::kBF16;
}

inline std::vector<float> Random(size_t n, uint32_t seed, float scale = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The values as T would store them (BF16 rounds), so CPU and GPU start
// from identical inputs.
template <typename T>
std::vector<float> Round(std::vector<float> v) {
  if constexpr (!std::is_same_v<T, float>) {
    for (float& x : v) x = Bf16BitsToFloat(Bf16Bits(x));
  }
  return v;
}

template <typename T>
DeviceBuffer<T> Upload(const std::vector<float>& v) {
  auto buffer = DeviceBuffer<T>::Create(v.size());
  EXPECT_TRUE(buffer.ok()) << buffer.status();
  if constexpr (std::is_same_v<T, float>) {
    cudaMemcpy(buffer->data(), v.data(), v.size() * 4, cudaMemcpyHostToDevice);
  } else {
    std::vector<uint16_t> bits(v.size());
    for (size_t i = 0; i < v.size(); ++i) bits[i] = Bf16Bits(v[i]);
    cudaMemcpy(buffer->data(), bits.data(), v.size() * 2,
               cudaMemcpyHostToDevice);
  }
  return std::move(*buffer);
}

template <typename T>
std::vector<float> Download(const T* device, size_t n) {
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(n);
  if constexpr (std::is_same_v<T, float>) {
    cudaMemcpy(out.data(), device, n * 4, cudaMemcpyDeviceToHost);
  } else {
    std::vector<uint16_t> bits(n);
    cudaMemcpy(bits.data(), device, n * 2, cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < n; ++i) out[i] = Bf16BitsToFloat(bits[i]);
  }
  return out;
}

template <typename T>
std::vector<float> Download(const DeviceBuffer<T>& buffer) {
  return Download(buffer.data(), buffer.size());
}

inline DeviceBuffer<int32_t> UploadInts(const std::vector<int32_t>& v) {
  auto buffer = DeviceBuffer<int32_t>::FromHost(v);
  EXPECT_TRUE(buffer.ok()) << buffer.status();
  return std::move(*buffer);
}

// max |got - want| / max |want|: the error relative to the data's scale.
inline double RelativeError(const std::vector<float>& got,
                            const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, double(std::fabs(got[i] - want[i])));
    scale = std::max(scale, double(std::fabs(want[i])));
  }
  return diff / scale;
}

}  // namespace hydra::gpu::testing

#endif  // HYDRA_TESTS_GPU_GPU_TEST_UTIL_H_
