// The int8 GEMM behind MatMul for WeightType::kInt8 matrices: activations
// are quantised per row in blocks of 32 (symmetric, one fp32 scale each, as
// the weights are), block dot products run on int8 (AVX2 maddubs/madd), and
// each block's int32 sum is scaled into an fp32 accumulator.
#ifndef HYDRA_WORKER_CPU_MATMUL_INT8_H_
#define HYDRA_WORKER_CPU_MATMUL_INT8_H_

#include "worker/cpu/kernels.h"

namespace hydra::cpu {

void MatMulInt8(const float* x, int m, int x_stride, const PackedMatrix& w,
                const float* bias, float* y, int y_stride);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_MATMUL_INT8_H_
