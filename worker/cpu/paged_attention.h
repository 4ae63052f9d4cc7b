// Attention over a paged KV cache: K and V of each layer live in blocks of
// `block_size` token slots ([num_blocks, block_size, kv_heads, head_dim]),
// and a sequence reaches its tokens through its block table.
#ifndef HYDRA_WORKER_CPU_PAGED_ATTENTION_H_
#define HYDRA_WORKER_CPU_PAGED_ATTENTION_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "worker/cpu/number_formats.h"

namespace hydra::cpu {

// How K and V are stored. The attention kernels read every type directly
// (no fp32 copy of the cache); kInt8 keeps one fp32 scale per token and KV
// head (symmetric, max |x| / 127), so a block holds 4 bytes more per head.
enum class KvType { kF32, kBF16, kF16, kInt8 };
std::string_view KvTypeName(KvType type);  // "fp32", "bf16", "f16", "int8"
// Bytes of one token's K (or V) for one KV head, scale included.
size_t KvBytesPerHead(KvType type, int head_dim);

// Calls f with a value of the C++ type that stores `type`'s elements
// (float, Bf16, F16, int8_t): the one place a KvType becomes a kernel
// instantiation.
template <typename F>
void WithElementType(KvType type, F&& f) {
  switch (type) {
    case KvType::kF32:
      return f(float{});
    case KvType::kBF16:
      return f(Bf16{});
    case KvType::kF16:
      return f(F16{});
    case KvType::kInt8:
      return f(int8_t{});
  }
}

struct PagedKvLayer {
  void* k = nullptr;  // [num_blocks, block_size, kv_heads, head_dim] of type
  void* v = nullptr;
  float* k_scale = nullptr;  // kInt8 only: [num_blocks * block_size, kv_heads]
  float* v_scale = nullptr;
  KvType type = KvType::kF32;
  int num_blocks = 0;
  int block_size = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int slot_values() const { return kv_heads * head_dim; }
};

// Stores each token's K and V rows (kv_heads * head_dim floats, rows
// `stride` floats apart) in its slot (block * block_size + offset),
// converted to the cache's type.
void WriteKv(const float* k, const float* v, int stride, int m,
             const int32_t* slots, const PagedKvLayer& cache);

// For each of `m` query tokens, causal attention over positions
// [0, positions[t]] of its sequence, read through `block_tables[t]`.
// q: [m, num_heads * head_dim] at `q_stride`; out: [m, num_heads * head_dim].
// Query head h reads KV head h / (num_heads / kv_heads) (grouped-query).
// Runs of consecutive tokens of one sequence (same block table pointer,
// consecutive positions: a prefill chunk) take the tiled kernel
// (tiled_attention.h), which reads each K/V row once per tile of tokens;
// other tokens (decodes) take a per-token kernel.
void PagedAttention(const float* q, int q_stride, int m, int num_heads,
                    const PagedKvLayer& cache, const int32_t* positions,
                    const int32_t* const* block_tables, float* out);

// The same attention with the per-token kernel for every token, runs
// included: the baseline tests and benchmarks hold the tiled kernel to.
void PerTokenPagedAttention(const float* q, int q_stride, int m, int num_heads,
                            const PagedKvLayer& cache, const int32_t* positions,
                            const int32_t* const* block_tables, float* out);

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_PAGED_ATTENTION_H_
