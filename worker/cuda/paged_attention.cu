// Attention over the paged KV cache for a flat batch: KV writes by slot,
// FlashDecoding for decode tokens (split context + merge), and a tiled
// kernel for prefill chunks. Both read K/V through the block tables and map
// query head h to KV head h / (num_heads / kv_heads) (grouped-query). A
// lane owns dims lane, lane + 32, ... of a head; a warp owns one key (decode)
// or one query row (prefill) at a time, with an online softmax in fp32.
#include <cfloat>
#include <type_traits>

#include "worker/cuda/common.cuh"
#include "worker/cuda/kernels.h"

namespace hydra::gpu {
namespace {

constexpr int kDecodeWarps = 4;
constexpr int kKeyTile = 16;

template <typename T>
__device__ __forceinline__ size_t SlotOffset(const DeviceKvLayer<T>& cache,
                                             const int32_t* table, int j,
                                             int kv_head) {
  const int block = table[j / cache.block_size];
  const size_t slot = size_t(block) * cache.block_size + j % cache.block_size;
  return (slot * cache.kv_heads + kv_head) * cache.head_dim;
}

// One step of the online softmax for a warp: score s, value row v.
template <int kDims>
struct OnlineSoftmax {
  float m = -INFINITY;
  float l = 0.0f;
  float acc[kDims] = {};

  template <typename V>
  __device__ __forceinline__ void Add(float s, const V& value_at) {
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new);
    const float p = expf(s - m_new);
    l = l * correction + p;
#pragma unroll
    for (int i = 0; i < kDims; ++i)
      acc[i] = acc[i] * correction + p * value_at(i);
    m = m_new;
  }
};

template <typename T>
__global__ void WriteKvKernel(const T* k, const T* v, int stride,
                              const int32_t* slots, DeviceKvLayer<T> cache) {
  const int t = blockIdx.x;
  const int slot = slots[t];
  if (slot < 0) return;
  const int row = cache.kv_heads * cache.head_dim;
  for (int j = threadIdx.x; j < row; j += blockDim.x) {
    cache.k[size_t(slot) * row + j] = k[size_t(t) * stride + j];
    cache.v[size_t(slot) * row + j] = v[size_t(t) * stride + j];
  }
}

template <typename T, int kDims>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    DecodeSplitKernel(const T* q, int q_stride, int num_heads,
                      DeviceKvLayer<T> cache, AttentionBatch batch,
                      const int32_t* decode_tokens, int chunk, int max_splits,
                      float* partial) {
  __shared__ float sm_m[kDecodeWarps], sm_l[kDecodeWarps];
  __shared__ float sm_acc[kDecodeWarps][kMaxHeadDim];
  const int hd = cache.head_dim;
  const int h = blockIdx.y, split = blockIdx.z;
  const int t = decode_tokens[blockIdx.x];
  const int ctx = batch.positions[t] + 1;
  const int begin = split * chunk;
  const int end = min(ctx, begin + chunk);
  if (begin >= end) return;  // the merge reads only the splits that ran
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int kv_head = h / (num_heads / cache.kv_heads);
  const float scale = 1.0f / sqrtf(float(hd));
  const int32_t* table =
      batch.block_tables + size_t(batch.token_seq[t]) * batch.blocks_per_seq;

  float qv[kDims];
  const T* qrow = q + size_t(t) * q_stride + size_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < hd ? ToFloat(qrow[d]) : 0.0f;
  }
  OnlineSoftmax<kDims> state;
  // Two keys per iteration: their loads and reductions overlap.
  for (int j = begin + warp; j < end; j += 2 * kDecodeWarps) {
    const bool second = j + kDecodeWarps < end;  // warp-uniform
    const size_t offset0 = SlotOffset(cache, table, j, kv_head);
    const size_t offset1 =
        second ? SlotOffset(cache, table, j + kDecodeWarps, kv_head) : offset0;
    float dot0 = 0.0f, dot1 = 0.0f;
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) {
        dot0 += qv[i] * ToFloat(cache.k[offset0 + d]);
        dot1 += qv[i] * ToFloat(cache.k[offset1 + d]);
      }
    }
    const float s0 = WarpSum(dot0) * scale;
    const float s1 = WarpSum(dot1) * scale;
    state.Add(s0, [&](int i) {
      const int d = lane + 32 * i;
      return d < hd ? ToFloat(cache.v[offset0 + d]) : 0.0f;
    });
    if (second) {
      state.Add(s1, [&](int i) {
        const int d = lane + 32 * i;
        return d < hd ? ToFloat(cache.v[offset1 + d]) : 0.0f;
      });
    }
  }
  if (lane == 0) {
    sm_m[warp] = state.m;
    sm_l[warp] = state.l;
  }
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) sm_acc[warp][d] = state.acc[i];
  }
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) m = fmaxf(m, sm_m[w]);
  float* out =
      partial +
      ((size_t(blockIdx.x) * num_heads + h) * max_splits + split) * (hd + 2);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      if (sm_l[w] > 0.0f) o += sm_acc[w][d] * expf(sm_m[w] - m);
    }
    out[d] = o;
  }
  if (threadIdx.x == 0) {
    float l = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      if (sm_l[w] > 0.0f) l += sm_l[w] * expf(sm_m[w] - m);
    }
    out[hd] = m;
    out[hd + 1] = l;
  }
}

template <typename T>
__global__ void DecodeMergeKernel(int num_heads, int head_dim,
                                  AttentionBatch batch,
                                  const int32_t* decode_tokens, int chunk,
                                  int max_splits, const float* partial,
                                  T* out) {
  const int h = blockIdx.y;
  const int t = decode_tokens[blockIdx.x];
  const int ctx = batch.positions[t] + 1;
  const int splits = ctx <= 0 ? 0 : min(max_splits, (ctx + chunk - 1) / chunk);
  const float* part = partial + (size_t(blockIdx.x) * num_heads + h) *
                                    max_splits * (head_dim + 2);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s)
    m = fmaxf(m, part[s * (head_dim + 2) + head_dim]);
  float l = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* p = part + s * (head_dim + 2);
    l += p[head_dim + 1] * expf(p[head_dim] - m);
  }
  T* o = out + (size_t(t) * num_heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* p = part + s * (head_dim + 2);
      sum += p[d] * expf(p[head_dim] - m);
    }
    o[d] = FromFloat<T>(splits == 0 ? 0.0f : sum / l);
  }
}

template <typename T, int kDims>
__global__ void __launch_bounds__(kPrefillTileRows * 32)
    PrefillKernel(const T* q, int q_stride, int num_heads,
                  DeviceKvLayer<T> cache, AttentionBatch batch,
                  const int32_t* tile_starts, int tile_rows, T* out) {
  __shared__ float ks[kKeyTile][kMaxHeadDim];
  __shared__ float vs[kKeyTile][kMaxHeadDim];
  __shared__ int tile_ctx;
  const int hd = cache.head_dim;
  const int h = blockIdx.y;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int first = tile_starts[blockIdx.x];
  const int seq = batch.token_seq[first];
  const int t = first + warp;
  const bool valid = warp < tile_rows && t < batch.num_tokens &&
                     batch.token_seq[t] == seq && batch.positions[t] >= 0;
  const int ctx = valid ? batch.positions[t] + 1 : 0;
  if (threadIdx.x == 0) tile_ctx = 0;
  __syncthreads();
  if (lane == 0) atomicMax(&tile_ctx, ctx);
  __syncthreads();
  const int kv_head = h / (num_heads / cache.kv_heads);
  const float scale = 1.0f / sqrtf(float(hd));
  const int32_t* table =
      batch.block_tables + size_t(seq) * batch.blocks_per_seq;

  float qv[kDims];
  const T* qrow = q + size_t(valid ? t : first) * q_stride + size_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < hd ? ToFloat(qrow[d]) : 0.0f;
  }
  OnlineSoftmax<kDims> state;
  for (int base = 0; base < tile_ctx; base += kKeyTile) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kKeyTile * hd; idx += blockDim.x) {
      const int jj = idx / hd, d = idx % hd, j = base + jj;
      if (j < tile_ctx) {
        const size_t offset = SlotOffset(cache, table, j, kv_head) + d;
        ks[jj][d] = ToFloat(cache.k[offset]);
        vs[jj][d] = ToFloat(cache.v[offset]);
      }
    }
    __syncthreads();
    const int keys = min(kKeyTile, ctx - base);
    for (int jj = 0; jj < keys; ++jj) {
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < kDims; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) dot += qv[i] * ks[jj][d];
      }
      const float s = WarpSum(dot) * scale;
      state.Add(s, [&](int i) {
        const int d = lane + 32 * i;
        return d < hd ? vs[jj][d] : 0.0f;
      });
    }
  }
  if (!valid) return;
  T* o = out + (size_t(t) * num_heads + h) * hd;
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = FromFloat<T>(state.acc[i] / state.l);
  }
}

// Calls f(std::integral_constant<int, dims per lane>) for the head size.
template <typename F>
cudaError_t WithDimsPerLane(int head_dim, F f) {
  if (head_dim <= 0 || head_dim > kMaxHeadDim) return cudaErrorInvalidValue;
  if (head_dim <= 64) return f(std::integral_constant<int, 2>());
  if (head_dim <= 128) return f(std::integral_constant<int, 4>());
  return f(std::integral_constant<int, 8>());
}

}  // namespace

template <typename T>
cudaError_t WriteKv(const T* k, const T* v, int stride, int m,
                    const int32_t* slots, DeviceKvLayer<T> cache,
                    cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  WriteKvKernel<<<m, 128, 0, stream>>>(k, v, stride, slots, cache);
  return cudaGetLastError();
}

template <typename T>
cudaError_t PagedAttentionDecode(const T* q, int q_stride, int num_heads,
                                 DeviceKvLayer<T> cache,
                                 const AttentionBatch& batch,
                                 const int32_t* decode_tokens, int num_decode,
                                 int chunk_tokens, int max_splits,
                                 float* partial, T* out, cudaStream_t stream) {
  if (num_decode == 0) return cudaSuccess;
  if (chunk_tokens <= 0 || max_splits <= 0) return cudaErrorInvalidValue;
  return WithDimsPerLane(cache.head_dim, [&](auto dims) {
    const dim3 grid(num_decode, num_heads, max_splits);
    DecodeSplitKernel<T, decltype(dims)::value>
        <<<grid, kDecodeWarps * 32, 0, stream>>>(
            q, q_stride, num_heads, cache, batch, decode_tokens, chunk_tokens,
            max_splits, partial);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    DecodeMergeKernel<T><<<dim3(num_decode, num_heads), 128, 0, stream>>>(
        num_heads, cache.head_dim, batch, decode_tokens, chunk_tokens,
        max_splits, partial, out);
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t PagedAttentionPrefill(const T* q, int q_stride, int num_heads,
                                  DeviceKvLayer<T> cache,
                                  const AttentionBatch& batch,
                                  const int32_t* tile_starts, int num_tiles,
                                  int tile_rows, T* out, cudaStream_t stream) {
  if (num_tiles == 0) return cudaSuccess;
  if (tile_rows <= 0 || tile_rows > kPrefillTileRows) {
    return cudaErrorInvalidValue;
  }
  return WithDimsPerLane(cache.head_dim, [&](auto dims) {
    PrefillKernel<T, decltype(dims)::value>
        <<<dim3(num_tiles, num_heads), kPrefillTileRows * 32, 0, stream>>>(
            q, q_stride, num_heads, cache, batch, tile_starts, tile_rows, out);
    return cudaGetLastError();
  });
}

#define HYDRA_INSTANTIATE(T)                                        \
  template cudaError_t WriteKv<T>(const T*, const T*, int, int,     \
                                  const int32_t*, DeviceKvLayer<T>, \
                                  cudaStream_t);                    \
  template cudaError_t PagedAttentionDecode<T>(                     \
      const T*, int, int, DeviceKvLayer<T>, const AttentionBatch&,  \
      const int32_t*, int, int, int, float*, T*, cudaStream_t);     \
  template cudaError_t PagedAttentionPrefill<T>(                    \
      const T*, int, int, DeviceKvLayer<T>, const AttentionBatch&,  \
      const int32_t*, int, int, T*, cudaStream_t);
HYDRA_INSTANTIATE(float)
HYDRA_INSTANTIATE(bf16)
#undef HYDRA_INSTANTIATE

}  // namespace hydra::gpu
