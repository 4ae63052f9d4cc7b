// This rank's shard of the model in device memory, row-major ([out, in] per
// projection, as the checkpoint stores it) in the storage type: BF16 for
// serving (F32 checkpoints converted at load), F32 for exact tests. Norm
// weights stay F32. The slicing is the CPU loader's (worker/weights.h): the
// host copy is read once, uploaded matrix by matrix and dropped.
#ifndef HYDRA_WORKER_CUDA_DEVICE_WEIGHTS_H_
#define HYDRA_WORKER_CUDA_DEVICE_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "worker/cuda/device_buffer.h"
#include "worker/cuda/gemm.h"
#include "worker/weights.h"

namespace hydra::gpu {

struct DeviceLayerWeights {
  DeviceBuffer<float> attn_norm, mlp_norm;
  DeviceBuffer<char> qkv;       // [(heads + 2 kv_heads) * head_dim, hidden]
  DeviceBuffer<char> qkv_bias;  // empty unless attention bias
  DeviceBuffer<char> o;         // [hidden, heads * head_dim]
  DeviceBuffer<char> gate_up;   // [2 * intermediate, hidden]
  DeviceBuffer<char> down;      // [hidden, intermediate]
};

struct DeviceWeights {
  DType dtype = DType::kBF16;
  DeviceBuffer<char> embedding;  // [local vocab rows, hidden]
  std::vector<DeviceLayerWeights> layers;
  DeviceBuffer<float> final_norm;
  DeviceBuffer<char> lm_head;  // [vocab_per_rank, hidden], zero padded

  // Uploads a shard loaded by the CPU loader.
  static absl::StatusOr<DeviceWeights> Upload(const worker::ModelWeights& host,
                                              const model::ModelConfig& config,
                                              const worker::Shard& shard,
                                              DType dtype);
  // Random weights (uniform, small) drawn on the device: benchmarks of
  // model shapes no checkpoint exists for. Values do not affect timing.
  static absl::StatusOr<DeviceWeights> Random(const model::ModelConfig& config,
                                              const worker::Shard& shard,
                                              DType dtype, uint64_t seed);
  size_t bytes() const;
};

// Size of one element of `dtype`.
inline size_t ElementBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// Round-to-nearest-even fp32 -> bf16 bits, on the host (NaN kept a NaN).
uint16_t Bf16Bits(float x);
float Bf16BitsToFloat(uint16_t bits);

// A PackedMatrix (the CPU GEMM's panel layout) back in row-major order.
std::vector<float> Unpack(const cpu::PackedMatrix& packed);

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_DEVICE_WEIGHTS_H_
