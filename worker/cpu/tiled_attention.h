// Flash-style attention for prefill chunks over the paged KV cache: a tile
// of consecutive query tokens of one sequence, with every query head of a KV
// head, walks the context once, so each K/V row read serves
// tile tokens * group query rows instead of one.
#ifndef HYDRA_WORKER_CPU_TILED_ATTENTION_H_
#define HYDRA_WORKER_CPU_TILED_ATTENTION_H_

#include <cstdint>
#include <span>

#include "worker/cpu/paged_attention.h"

namespace hydra::cpu {

// Tokens [first, first + count) of a PagedAttention call that belong to one
// sequence (one block table) at consecutive positions.
struct QueryRun {
  int first = 0;
  int count = 0;
};

// The same causal attention as PagedAttention (same arguments, same
// output), for the tokens of `runs` only. T is the cache's element type
// (float, Bf16, F16 or int8_t); instantiated for those four.
template <typename T>
void TiledAttention(const float* q, int q_stride, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables,
                    std::span<const QueryRun> runs, float* out);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_TILED_ATTENTION_H_
