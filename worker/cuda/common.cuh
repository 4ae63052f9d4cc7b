// Device helpers shared by the .cu files: loads and stores in either storage
// type with fp32 arithmetic, and warp / block reductions.
#ifndef HYDRA_WORKER_CUDA_COMMON_CUH_
#define HYDRA_WORKER_CUDA_COMMON_CUH_

#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>

namespace hydra::gpu {

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduces over the whole thread block (blockDim.x a multiple of 32,
// <= 1024) with `warp_reduce`, `identity` filling the lanes past the last
// warp; every thread gets the result. `scratch`: 32 floats of shared memory.
template <typename WarpReduce>
__device__ __forceinline__ float BlockReduce(float v, float* scratch,
                                             float identity,
                                             WarpReduce warp_reduce) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_reduce(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? scratch[lane] : identity;
  return warp_reduce(v);
}
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  return BlockReduce(v, scratch, 0.0f, [](float x) { return WarpSum(x); });
}
__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  return BlockReduce(v, scratch, -INFINITY, [](float x) { return WarpMax(x); });
}

// 64-bit mix (splitmix64's finalizer): a counter-based random source.
__device__ __forceinline__ uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Uniform in (0, 1) from 53 bits of the hash.
__device__ __forceinline__ double UniformOpen(uint64_t bits) {
  return ((bits >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_COMMON_CUH_
