// Attention over a paged KV cache: K and V of each layer live in blocks of
// `block_size` token slots ([num_blocks, block_size, kv_heads, head_dim]),
// and a sequence reaches its tokens through its block table.
#ifndef HYDRA_WORKER_CPU_PAGED_ATTENTION_H_
#define HYDRA_WORKER_CPU_PAGED_ATTENTION_H_

#include <cstdint>

namespace hydra::cpu {

struct PagedKvLayer {
  float* k = nullptr;
  float* v = nullptr;
  int num_blocks = 0;
  int block_size = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int slot_floats() const { return kv_heads * head_dim; }
};

// Copies each token's K and V rows (kv_heads * head_dim floats, rows
// `stride` floats apart) into its slot (block * block_size + offset).
void WriteKv(const float* k, const float* v, int stride, int m,
             const int32_t* slots, const PagedKvLayer& cache);

// For each of `m` query tokens, causal attention over positions
// [0, positions[t]] of its sequence, read through `block_tables[t]`.
// q: [m, num_heads * head_dim] at `q_stride`; out: [m, num_heads * head_dim].
// Query head h reads KV head h / (num_heads / kv_heads) (grouped-query).
void PagedAttention(const float* q, int q_stride, int m, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables, float* out);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_PAGED_ATTENTION_H_
