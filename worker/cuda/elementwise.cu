// The memory-bound kernels: embedding, RMS norm, RoPE, SiLU gating, adds,
// row gathers and precision conversions. Grid-stride loops over elements,
// or one thread block per row where a row needs a reduction.
#include "worker/cuda/common.cuh"
#include "worker/cuda/kernels.h"

namespace hydra::gpu {
namespace {

constexpr int kThreads = 256;

int BlocksFor(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

template <typename T>
__global__ void EmbeddingKernel(const T* table, const int32_t* ids, int dim,
                                int vocab_begin, int vocab_end, float* x) {
  const int t = blockIdx.x;
  const int id = ids[t];
  const bool local = id >= vocab_begin && id < vocab_end;
  const T* row = table + size_t(local ? id - vocab_begin : 0) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    x[size_t(t) * dim + j] = local ? ToFloat(row[j]) : 0.0f;
  }
}

template <typename T>
__global__ void RmsNormKernel(const float* x, const float* weight, int dim,
                              float eps, T* out) {
  __shared__ float scratch[32];
  const float* row = x + size_t(blockIdx.x) * dim;
  float sum = 0.0f;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) sum += row[j] * row[j];
  sum = BlockSum(sum, scratch);
  const float scale = 1.0f / sqrtf(sum / float(dim) + eps);
  T* o = out + size_t(blockIdx.x) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    o[j] = FromFloat<T>(row[j] * scale * weight[j]);
  }
}

template <typename T>
__global__ void RopeKernel(T* x, int stride, int num_heads, int head_dim,
                           const int32_t* positions, const float* cos_table,
                           const float* sin_table) {
  const int t = blockIdx.x;
  const int pos = positions[t];
  if (pos < 0) return;
  const int half = head_dim / 2;
  const float* c = cos_table + size_t(pos) * half;
  const float* s = sin_table + size_t(pos) * half;
  T* row = x + size_t(t) * stride;
  for (int i = threadIdx.x; i < num_heads * half; i += blockDim.x) {
    const int h = i / half, j = i % half;
    T* lo = row + size_t(h) * head_dim + j;
    T* hi = lo + half;
    const float a = ToFloat(*lo), b = ToFloat(*hi);
    // fmaf as the CPU's fmsub/fmadd: the same rounding in fp32.
    *lo = FromFloat<T>(fmaf(a, c[j], -(b * s[j])));
    *hi = FromFloat<T>(fmaf(b, c[j], a * s[j]));
  }
}

template <typename T>
__global__ void SiluMulKernel(const T* gate_up, int m, int hidden, T* out) {
  const size_t n = size_t(m) * hidden;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / hidden, j = i % hidden;
    const float g = ToFloat(gate_up[r * 2 * hidden + j]);
    const float u = ToFloat(gate_up[r * 2 * hidden + hidden + j]);
    out[i] = FromFloat<T>(g / (1.0f + expf(-g)) * u);
  }
}

__global__ void AddKernel(float* x, const float* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    x[i] += y[i];
  }
}

template <typename T>
__global__ void BiasKernel(T* y, const T* bias, int m, int n, int stride) {
  const size_t total = size_t(m) * n;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x) {
    T* p = y + (i / n) * stride + i % n;
    *p = FromFloat<T>(ToFloat(*p) + ToFloat(bias[i % n]));
  }
}

__global__ void GatherKernel(const float* x, const int32_t* rows, int dim,
                             float* out) {
  const float* src = x + size_t(rows[blockIdx.x]) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    out[size_t(blockIdx.x) * dim + j] = src[j];
  }
}

template <typename In, typename Out>
__global__ void ConvertKernel(const In* in, size_t n, Out* out) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    out[i] = FromFloat<Out>(ToFloat(in[i]));
  }
}

template <typename T>
__global__ void FillKernel(T* out, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    const double u = UniformOpen(Mix64(seed * 0x9e3779b97f4a7c15ull + i));
    out[i] = FromFloat<T>(float((2.0 * u - 1.0) * scale));
  }
}

__global__ void AssembleKernel(const float* gathered, int ranks, int rows,
                               int per_rank, int vocab, float* logits) {
  const int row = blockIdx.x;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
    const int r = v / per_rank, j = v % per_rank;
    logits[size_t(row) * vocab + v] =
        gathered[(size_t(r) * rows + row) * per_rank + j];
  }
}

}  // namespace

template <typename T>
cudaError_t EmbeddingLookup(const T* table, const int32_t* ids, int m, int dim,
                            int vocab_begin, int vocab_end, float* x,
                            cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  EmbeddingKernel<<<m, kThreads, 0, stream>>>(table, ids, dim, vocab_begin,
                                              vocab_end, x);
  return cudaGetLastError();
}

template <typename T>
cudaError_t RmsNorm(const float* x, const float* weight, int m, int dim,
                    float eps, T* out, cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  RmsNormKernel<<<m, kThreads, 0, stream>>>(x, weight, dim, eps, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t ApplyRope(T* x, int m, int stride, int num_heads, int head_dim,
                      const int32_t* positions, const float* cos,
                      const float* sin, cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  RopeKernel<<<m, 128, 0, stream>>>(x, stride, num_heads, head_dim, positions,
                                    cos, sin);
  return cudaGetLastError();
}

template <typename T>
cudaError_t SiluMul(const T* gate_up, int m, int hidden, T* out,
                    cudaStream_t stream) {
  const size_t n = size_t(m) * hidden;
  if (n == 0) return cudaSuccess;
  SiluMulKernel<<<BlocksFor(n), kThreads, 0, stream>>>(gate_up, m, hidden, out);
  return cudaGetLastError();
}

cudaError_t AddInPlace(float* x, const float* y, size_t n,
                       cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  AddKernel<<<BlocksFor(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

template <typename T>
cudaError_t AddBias(T* y, const T* bias, int m, int n, int stride,
                    cudaStream_t stream) {
  const size_t total = size_t(m) * n;
  if (total == 0) return cudaSuccess;
  BiasKernel<<<BlocksFor(total), kThreads, 0, stream>>>(y, bias, m, n, stride);
  return cudaGetLastError();
}

cudaError_t GatherRows(const float* x, const int32_t* rows, int count, int dim,
                       float* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  GatherKernel<<<count, kThreads, 0, stream>>>(x, rows, dim, out);
  return cudaGetLastError();
}

cudaError_t FloatToBf16(const float* in, size_t n, bf16* out,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ConvertKernel<<<BlocksFor(n), kThreads, 0, stream>>>(in, n, out);
  return cudaGetLastError();
}

cudaError_t Bf16ToFloat(const bf16* in, size_t n, float* out,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ConvertKernel<<<BlocksFor(n), kThreads, 0, stream>>>(in, n, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t FillUniform(T* out, size_t n, uint64_t seed, float scale,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillKernel<<<BlocksFor(n), kThreads, 0, stream>>>(out, n, seed, scale);
  return cudaGetLastError();
}

cudaError_t AssembleVocab(const float* gathered, int ranks, int rows,
                          int per_rank, int vocab, float* logits,
                          cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  AssembleKernel<<<rows, kThreads, 0, stream>>>(gathered, ranks, rows, per_rank,
                                                vocab, logits);
  return cudaGetLastError();
}

#define HYDRA_INSTANTIATE(T)                                                   \
  template cudaError_t EmbeddingLookup<T>(const T*, const int32_t*, int, int,  \
                                          int, int, float*, cudaStream_t);     \
  template cudaError_t RmsNorm<T>(const float*, const float*, int, int, float, \
                                  T*, cudaStream_t);                           \
  template cudaError_t ApplyRope<T>(T*, int, int, int, int, const int32_t*,    \
                                    const float*, const float*, cudaStream_t); \
  template cudaError_t SiluMul<T>(const T*, int, int, T*, cudaStream_t);       \
  template cudaError_t AddBias<T>(T*, const T*, int, int, int, cudaStream_t);  \
  template cudaError_t FillUniform<T>(T*, size_t, uint64_t, float,             \
                                      cudaStream_t);
HYDRA_INSTANTIATE(float)
HYDRA_INSTANTIATE(bf16)
#undef HYDRA_INSTANTIATE

}  // namespace hydra::gpu
