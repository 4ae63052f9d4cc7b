// The device kernel set, mirroring worker/cpu/kernels.h and
// worker/cpu/paged_attention.h term for term so tests can compare the two.
// `T` is the storage type of weights, activations and the KV cache: float
// (exact, for tests) or __nv_bfloat16 (serving); arithmetic is always fp32.
// The residual stream x and the row-parallel GEMM outputs stay fp32, so the
// collectives work on floats. Every launcher enqueues on `stream` and
// returns cudaGetLastError() of the launch.
#ifndef HYDRA_WORKER_CUDA_KERNELS_H_
#define HYDRA_WORKER_CUDA_KERNELS_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace hydra::gpu {

using bf16 = __nv_bfloat16;

// Vocabulary-parallel embedding: x[t] = table[ids[t] - vocab_begin] when the
// id falls in [vocab_begin, vocab_end), zeros otherwise (the all-reduce
// assembles the rows). x: [m, dim] fp32.
template <typename T>
cudaError_t EmbeddingLookup(const T* table, const int32_t* ids, int m, int dim,
                            int vocab_begin, int vocab_end, float* x,
                            cudaStream_t stream);

// out[i] = x[i] / rms(x[i]) * weight, rows of `dim`; weight fp32.
template <typename T>
cudaError_t RmsNorm(const float* x, const float* weight, int m, int dim,
                    float eps, T* out, cudaStream_t stream);

// Rotate-half RoPE in place on `num_heads` heads of each row (stride
// `stride` elements); cos/sin: [max_positions, head_dim / 2] fp32 (the CPU
// RopeTable's values). Rows with a negative position are left alone.
template <typename T>
cudaError_t ApplyRope(T* x, int m, int stride, int num_heads, int head_dim,
                      const int32_t* positions, const float* cos,
                      const float* sin, cudaStream_t stream);

// out[i, j] = silu(gate_up[i, j]) * gate_up[i, hidden + j].
template <typename T>
cudaError_t SiluMul(const T* gate_up, int m, int hidden, T* out,
                    cudaStream_t stream);

// x[i] += y[i] for n floats.
cudaError_t AddInPlace(float* x, const float* y, size_t n, cudaStream_t stream);

// y[i, j] += bias[j], rows `stride` apart (attention bias after the GEMM).
template <typename T>
cudaError_t AddBias(T* y, const T* bias, int m, int n, int stride,
                    cudaStream_t stream);

// out[r] = x[rows[r]], `dim` floats per row.
cudaError_t GatherRows(const float* x, const int32_t* rows, int count, int dim,
                       float* out, cudaStream_t stream);

// Precision conversions, n elements.
cudaError_t FloatToBf16(const float* in, size_t n, bf16* out,
                        cudaStream_t stream);
cudaError_t Bf16ToFloat(const bf16* in, size_t n, float* out,
                        cudaStream_t stream);
// Fills `out` with uniform values in [-scale, scale) from a counter-based
// hash of (seed, index): random weights for benchmarks, no host copy.
template <typename T>
cudaError_t FillUniform(T* out, size_t n, uint64_t seed, float scale,
                        cudaStream_t stream);

// Gathered vocabulary-parallel logits, [ranks, rows, per_rank], laid out as
// [rows, vocab] (the last rank's padding dropped).
cudaError_t AssembleVocab(const float* gathered, int ranks, int rows,
                          int per_rank, int vocab, float* logits,
                          cudaStream_t stream);

// One layer of the paged KV cache: K and V of [num_blocks, block_size,
// kv_heads, head_dim] elements of T.
template <typename T>
struct DeviceKvLayer {
  T* k = nullptr;
  T* v = nullptr;
  int block_size = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

// Copies each token's K and V rows (rows `stride` apart) into slot
// slots[t]; tokens with a negative slot (padding) are skipped.
template <typename T>
cudaError_t WriteKv(const T* k, const T* v, int stride, int m,
                    const int32_t* slots, DeviceKvLayer<T> cache,
                    cudaStream_t stream);

// What the attention kernels read of a packed step (see
// worker/cuda/launch_plan.h, StepMetadata): device pointers into it.
struct AttentionBatch {
  const int32_t* positions = nullptr;     // [tokens]; -1 = padding
  const int32_t* token_seq = nullptr;     // [tokens]
  const int32_t* block_tables = nullptr;  // [seqs, blocks_per_seq]
  int blocks_per_seq = 0;
  int num_tokens = 0;
};

// Decode tokens, FlashDecoding style: thread block (token, head, split)
// attends to chunk `split` of the token's context (chunk_tokens keys) with
// an online softmax and leaves (max, sum, partial output) in the scratch;
// a second kernel merges the splits into out. Grid: num_decode x heads x
// max_splits; splits past a token's context do nothing.
// partial: [num_decode, heads, max_splits, head_dim + 2] floats.
template <typename T>
cudaError_t PagedAttentionDecode(const T* q, int q_stride, int num_heads,
                                 DeviceKvLayer<T> cache,
                                 const AttentionBatch& batch,
                                 const int32_t* decode_tokens, int num_decode,
                                 int chunk_tokens, int max_splits,
                                 float* partial, T* out, cudaStream_t stream);

// Prefill chunks: thread block (tile, head) takes up to `tile_rows`
// consecutive query tokens of one sequence, one warp per token, and streams
// the sequence's K/V through shared memory once for all of them (causal).
template <typename T>
cudaError_t PagedAttentionPrefill(const T* q, int q_stride, int num_heads,
                                  DeviceKvLayer<T> cache,
                                  const AttentionBatch& batch,
                                  const int32_t* tile_starts, int num_tiles,
                                  int tile_rows, T* out, cudaStream_t stream);

// The query rows per prefill tile the kernel is built for.
inline constexpr int kPrefillTileRows = 8;
// The largest head_dim the attention kernels take.
inline constexpr int kMaxHeadDim = 256;

// Sampling on the device, one thread block per row of logits [rows, vocab]:
// greedy (temperature < 1e-5 or top_k 1) is the argmax, lowest id among
// ties; otherwise a Gumbel-max draw over logits / T among the tokens that
// survive top_k (0 = all) and then top_p (1 = all). Both cuts are found by
// bisecting a threshold (on the logit, then on the probability), so tokens
// tied at the cut are all kept. The noise is a counter-based hash of
// (seed, counter, token id): a row's draw does not depend on its batch.
// token[r] and, when logprob is non-null, the chosen token's log-softmax of
// the unscaled logits come back; nothing else leaves the device.
struct DeviceSamplingRow {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  uint64_t counter = 0;
};
cudaError_t SampleRows(const float* logits, int rows, int vocab,
                       const DeviceSamplingRow* params, int32_t* token,
                       float* logprob, cudaStream_t stream);

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_KERNELS_H_
