// The forward pass on the device: the CPU ModelRunner's Forward
// (worker/model_runner.cc) step for step over the device kernel set, all on
// the runner's stream, so that a decode step can be captured as a graph.
#include "common/status_macros.h"
#include "worker/cuda/cuda_runner.h"
#include "worker/cuda/cuda_status.h"

namespace hydra::gpu {

template <typename T>
DeviceKvLayer<T> CudaRunner::KvLayer(int layer) {
  const worker::Shard& s = shard_;
  DeviceKvLayer<T> cache;
  cache.block_size = options_.block_size;
  cache.kv_heads = s.kv_heads(config_);
  cache.head_dim = config_.head_dim;
  const size_t elems =
      size_t(num_blocks_) * cache.block_size * cache.kv_heads * cache.head_dim;
  T* base = reinterpret_cast<T*>(kv_.data());
  cache.k = base + 2 * size_t(layer) * elems;
  cache.v = cache.k + elems;
  return cache;
}

template <typename T>
absl::Status CudaRunner::Enqueue(const Launch& launch) {
  const model::ModelConfig& c = config_;
  cudaStream_t s = stream_;
  const DType dt = options_.dtype;
  const int m = launch.m;
  const int dim = c.hidden_size, hd = c.head_dim;
  const int heads = shard_.heads(c), kv_heads = shard_.kv_heads(c);
  const int inter = shard_.intermediate(c);
  const int q_width = heads * hd, kv_width = kv_heads * hd;
  const int qkv_width = q_width + 2 * kv_width;

  StepMetadata layout;
  layout.capacity = launch.capacity;
  layout.seq_capacity = launch.seq_capacity;
  layout.blocks_per_seq = blocks_per_seq_;
  const int32_t* ids = meta_ + layout.token_ids();
  const int32_t* positions = meta_ + layout.positions();
  const int32_t* slots = meta_ + layout.slots();
  AttentionBatch batch;
  batch.positions = positions;
  batch.token_seq = meta_ + layout.token_seq();
  batch.block_tables = meta_ + layout.block_tables();
  batch.blocks_per_seq = blocks_per_seq_;
  batch.num_tokens = m;

  T* h = static_cast<T*>(h_);
  T* qkv = static_cast<T*>(qkv_);
  T* attn = static_cast<T*>(attn_);
  T* gate_up = static_cast<T*>(gate_up_);
  T* act = static_cast<T*>(act_);
  auto weight = [](const DeviceBuffer<char>& b) {
    return reinterpret_cast<const T*>(b.data());
  };
  auto all_reduce = [&](float* data, size_t n) -> absl::Status {
    if (!collectives_) return absl::OkStatus();
    return nccl_->AllReduceSum({data, n});
  };

  CUDA_RETURN_IF_ERROR(EmbeddingLookup<T>(weight(weights_.embedding), ids, m,
                                          dim, shard_.vocab_begin(c),
                                          shard_.vocab_end(c), x_, s));
  RETURN_IF_ERROR(all_reduce(x_, size_t(m) * dim));

  for (int l = 0; l < c.num_layers; ++l) {
    const DeviceLayerWeights& w = weights_.layers[l];
    const DeviceKvLayer<T> cache = KvLayer<T>(l);
    CUDA_RETURN_IF_ERROR(
        RmsNorm<T>(x_, w.attn_norm.data(), m, dim, c.rms_norm_eps, h, s));
    RETURN_IF_ERROR(blas_->Gemm(h, m, dim, dim, w.qkv.data(), qkv_width, dt,
                                qkv, qkv_width, dt));
    if (w.qkv_bias.size() > 0) {
      CUDA_RETURN_IF_ERROR(
          AddBias<T>(qkv, weight(w.qkv_bias), m, qkv_width, qkv_width, s));
    }
    T* q = qkv;
    T* k = q + q_width;
    T* v = k + kv_width;
    CUDA_RETURN_IF_ERROR(ApplyRope<T>(q, m, qkv_width, heads, hd, positions,
                                      rope_cos_.data(), rope_sin_.data(), s));
    CUDA_RETURN_IF_ERROR(ApplyRope<T>(k, m, qkv_width, kv_heads, hd, positions,
                                      rope_cos_.data(), rope_sin_.data(), s));
    CUDA_RETURN_IF_ERROR(WriteKv<T>(k, v, qkv_width, m, slots, cache, s));
    CUDA_RETURN_IF_ERROR(PagedAttentionDecode<T>(
        q, qkv_width, heads, cache, batch, meta_ + layout.decode_tokens(),
        launch.num_decode, launch.split.chunk_tokens, launch.split.max_splits,
        partial_, attn, s));
    CUDA_RETURN_IF_ERROR(PagedAttentionPrefill<T>(
        q, qkv_width, heads, cache, batch, meta_ + layout.prefill_tiles(),
        launch.num_tiles, kPrefillTileRows, attn, s));
    RETURN_IF_ERROR(blas_->Gemm(attn, m, q_width, q_width, w.o.data(), dim, dt,
                                proj_, dim, DType::kF32));
    RETURN_IF_ERROR(all_reduce(proj_, size_t(m) * dim));
    CUDA_RETURN_IF_ERROR(AddInPlace(x_, proj_, size_t(m) * dim, s));

    CUDA_RETURN_IF_ERROR(
        RmsNorm<T>(x_, w.mlp_norm.data(), m, dim, c.rms_norm_eps, h, s));
    RETURN_IF_ERROR(blas_->Gemm(h, m, dim, dim, w.gate_up.data(), 2 * inter, dt,
                                gate_up, 2 * inter, dt));
    CUDA_RETURN_IF_ERROR(SiluMul<T>(gate_up, m, inter, act, s));
    RETURN_IF_ERROR(blas_->Gemm(act, m, inter, inter, w.down.data(), dim, dt,
                                proj_, dim, DType::kF32));
    RETURN_IF_ERROR(all_reduce(proj_, size_t(m) * dim));
    CUDA_RETURN_IF_ERROR(AddInPlace(x_, proj_, size_t(m) * dim, s));
  }

  // Only the rows that sample need the final norm and the classifier.
  const int rows = launch.num_logits;
  CUDA_RETURN_IF_ERROR(
      GatherRows(x_, meta_ + layout.logits_rows(), rows, dim, proj_, s));
  CUDA_RETURN_IF_ERROR(RmsNorm<T>(proj_, weights_.final_norm.data(), rows, dim,
                                  c.rms_norm_eps, h, s));
  if (!collectives_) {
    return blas_->Gemm(h, rows, dim, dim, weights_.lm_head.data(), c.vocab_size,
                       dt, logits_, c.vocab_size, DType::kF32);
  }
  // Vocabulary-parallel classifier: each rank's padded slice, gathered and
  // laid out as [rows, vocab].
  const int per_rank = shard_.vocab_per_rank(c);
  RETURN_IF_ERROR(blas_->Gemm(h, rows, dim, dim, weights_.lm_head.data(),
                              per_rank, dt, local_logits_, per_rank,
                              DType::kF32));
  RETURN_IF_ERROR(
      nccl_->AllGather({local_logits_, size_t(rows) * per_rank},
                       {gathered_, size_t(shard_.size) * rows * per_rank}));
  return CudaStatus(AssembleVocab(gathered_, shard_.size, rows, per_rank,
                                  c.vocab_size, logits_, s),
                    "AssembleVocab");
}

template absl::Status CudaRunner::Enqueue<float>(const Launch& launch);
template absl::Status CudaRunner::Enqueue<bf16>(const Launch& launch);

}  // namespace hydra::gpu
