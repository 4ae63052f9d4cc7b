// Sampling on the device: one thread block per row of logits. Only the
// chosen token id and its logprob leave the device.
#include <cfloat>

#include "worker/cuda/common.cuh"
#include "worker/cuda/kernels.h"

namespace hydra::gpu {
namespace {

constexpr int kThreads = 1024;
constexpr int kBisections = 40;

struct Best {
  float value;
  int index;
};

// Larger value wins; the lower index among ties.
__device__ __forceinline__ Best Better(Best a, Best b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ Best BlockBest(Best v, Best* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, v.value, o),
               __shfl_xor_sync(0xffffffffu, v.index, o)};
    v = Better(v, other);
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < blockDim.x / 32 ? scratch[lane] : Best{-INFINITY, 1 << 30};
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, v.value, o),
               __shfl_xor_sync(0xffffffffu, v.index, o)};
    v = Better(v, other);
  }
  return v;
}

__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* logits, int vocab,
                 const DeviceSamplingRow* params, int32_t* token,
                 float* logprob) {
  __shared__ float scratch[32];
  __shared__ Best best_scratch[32];
  const float* x = logits + size_t(blockIdx.x) * vocab;
  const DeviceSamplingRow p = params[blockIdx.x];

  Best best{-INFINITY, 1 << 30};
  float lowest = INFINITY;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    best = Better(best, Best{x[i], i});
    lowest = fminf(lowest, x[i]);
  }
  best = BlockBest(best, best_scratch);
  const float max = best.value;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf(x[i] - max);
  sum = BlockSum(sum, scratch);
  lowest = -BlockMax(-lowest, scratch);

  int chosen = best.index;
  const bool greedy = p.temperature < 1e-5f || p.top_k == 1;
  if (!greedy) {
    const float inv_t = 1.0f / p.temperature;
    // top-k: the largest logit threshold that still keeps >= k tokens.
    float keep_logit = -INFINITY;
    if (p.top_k > 0 && p.top_k < vocab) {
      // Logits more than 1e4 below the best carry no weight at any sane
      // temperature; starting there keeps the bisection fine-grained (and
      // finite when some logits are -inf).
      float lo = fmaxf(lowest, max - 1e4f), hi = max;
      for (int it = 0; it < kBisections; ++it) {
        const float mid = 0.5f * (lo + hi);
        float count = 0.0f;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
          count += x[i] >= mid ? 1.0f : 0.0f;
        count = BlockSum(count, scratch);
        if (count >= float(p.top_k))
          lo = mid;
        else
          hi = mid;
      }
      keep_logit = lo;
    }
    // top-p: the largest probability threshold whose kept mass >= top_p.
    float keep_weight = 0.0f;
    if (p.top_p < 1.0f) {
      float total = 0.0f;
      for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        if (x[i] >= keep_logit) total += expf((x[i] - max) * inv_t);
      total = BlockSum(total, scratch);
      float lo = 0.0f, hi = 1.0f;
      for (int it = 0; it < kBisections; ++it) {
        const float mid = 0.5f * (lo + hi);
        float mass = 0.0f;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
          const float w = expf((x[i] - max) * inv_t);
          if (x[i] >= keep_logit && w >= mid) mass += w;
        }
        mass = BlockSum(mass, scratch);
        if (mass >= p.top_p * total)
          lo = mid;
        else
          hi = mid;
      }
      keep_weight = lo;
    }
    // Gumbel-max over the survivors.
    const uint64_t stream =
        Mix64(p.seed ^ Mix64(p.counter + 0x632be59bd9b4e019ull));
    Best draw{-INFINITY, 1 << 30};
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      if (x[i] < keep_logit) continue;
      if (expf((x[i] - max) * inv_t) < keep_weight) continue;
      const double u = UniformOpen(Mix64(stream + uint64_t(i)));
      const float gumbel = float(-log(-log(u)));
      draw = Better(draw, Best{x[i] * inv_t + gumbel, i});
    }
    draw = BlockBest(draw, best_scratch);
    chosen = draw.index;
  }
  if (threadIdx.x == 0) {
    token[blockIdx.x] = chosen;
    if (logprob != nullptr) {
      logprob[blockIdx.x] = x[chosen] - max - logf(sum);
    }
  }
}

}  // namespace

cudaError_t SampleRows(const float* logits, int rows, int vocab,
                       const DeviceSamplingRow* params, int32_t* token,
                       float* logprob, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  SampleKernel<<<rows, kThreads, 0, stream>>>(logits, vocab, params, token,
                                              logprob);
  return cudaGetLastError();
}

}  // namespace hydra::gpu
