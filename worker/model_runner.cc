#include "worker/model_runner.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/cpu/paged_attention.h"
#include "worker/kv_fingerprint.h"

namespace hydra::worker {

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Load(
    const std::filesystem::path& model_dir, const RunnerOptions& options,
    Communicator* comm) {
  if (options.block_size <= 0 || options.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size and num_blocks must be positive (got ",
                     options.block_size, ", ", options.num_blocks, ")"));
  }
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(model_dir));
  if (options.max_positions < 0 ||
      options.max_positions > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_positions ", options.max_positions, " is outside [0, ",
        config.max_position_embeddings, "] (the model's context)"));
  }
  // The checkpoint stays mapped only while the weights are packed from it.
  ASSIGN_OR_RETURN(model::Checkpoint checkpoint,
                   model::Checkpoint::Open(model_dir));
  ASSIGN_OR_RETURN(const Precision precision,
                   ResolvePrecision(options.weight_dtype,
                                    options.kv_cache_dtype, checkpoint));
  const Shard shard =
      comm == nullptr ? Shard{} : Shard{comm->rank(), comm->size()};
  ASSIGN_OR_RETURN(
      ModelWeights weights,
      ModelWeights::Load(checkpoint, config, shard, precision.weights));
  const KvCacheShape kv_shape{config.num_layers, shard.kv_heads(config),
                              config.head_dim, options.block_size,
                              precision.kv_cache};
  const int max_positions = options.max_positions > 0
                                ? options.max_positions
                                : config.max_position_embeddings;
  auto runner = std::make_unique<ModelRunner>(
      std::move(config), std::move(weights), kv_shape, options.num_blocks,
      max_positions, comm, shard);
  if (options.kv_tiers.enabled()) {
    ASSIGN_OR_RETURN(
        const uint64_t fingerprint,
        KvFingerprint(model_dir,
                      {runner->weight_dtype(), runner->kv_cache_dtype(),
                       shard.size, shard.rank, options.block_size}));
    ASSIGN_OR_RETURN(std::unique_ptr<KvTierStore> tiers,
                     KvTierStore::Open(options.kv_tiers, fingerprint,
                                       kv_shape.bytes_per_block()));
    runner->set_kv_tiers(std::move(tiers));
  }
  return runner;
}

ModelRunner::ModelRunner(model::ModelConfig config, ModelWeights weights,
                         const KvCacheShape& kv_shape, int num_blocks,
                         int max_positions, Communicator* comm, Shard shard)
    : config_(std::move(config)),
      comm_(comm == nullptr ? &local_comm_ : comm),
      shard_(shard),
      weights_(std::move(weights)),
      kv_cache_(kv_shape, num_blocks),
      rope_(max_positions, config_.head_dim, config_.rope_theta,
            config_.rope_scaling) {}

absl::Status ModelRunner::Validate(const internal::StepPlan& plan) const {
  return ValidateStepPlan(plan, config_, kv_cache_.num_blocks(),
                          kv_cache_.shape().block_size, rope_.max_positions());
}

void ModelRunner::Resize(int tokens) {
  const auto& c = config_;
  const size_t t = tokens;
  const size_t q = size_t(shard_.heads(c)) * c.head_dim;
  const size_t kv = size_t(shard_.kv_heads(c)) * c.head_dim;
  x_.resize(t * c.hidden_size);
  h_.resize(t * c.hidden_size);
  qkv_.resize(t * (q + 2 * kv));
  attn_.resize(t * q);
  proj_.resize(t * c.hidden_size);
  gate_up_.resize(t * 2 * shard_.intermediate(c));
  act_.resize(t * shard_.intermediate(c));
  token_block_table_.resize(t);
}

absl::Status ModelRunner::Step(const internal::StepPlan& plan,
                               std::vector<float>& logits) {
  RETURN_IF_ERROR(Validate(plan));
  collective_time_ = absl::ZeroDuration();
  if (comm_->size() > 1) {
    std::string bytes = plan.SerializeAsString();
    RETURN_IF_ERROR(Collective([&] { return comm_->Broadcast(bytes, 0); }));
  }
  return Forward(plan, logits);
}

absl::Status ModelRunner::RunWorkerLoop() {
  std::vector<float> logits;
  return ServeStepPlans(*comm_, [&](const internal::StepPlan& plan) {
    return Forward(plan, logits);
  });
}

absl::Status ModelRunner::ShutdownWorkers() { return SendShutdown(*comm_); }

absl::Status ModelRunner::Forward(const internal::StepPlan& plan,
                                  std::vector<float>& logits) {
  KvTierTraffic tiers(
      tiers_.get(), plan,
      [&](int b, std::span<std::byte> out) { kv_cache_.ReadBlock(b, out); },
      [this](int b, std::span<const std::byte> in) {
        kv_cache_.WriteBlock(b, in);
      });
  RETURN_IF_ERROR(ForwardTokens(plan, logits));
  return tiers.Finish(*comm_, failed_kv_loads_);
}

absl::Status ModelRunner::ForwardTokens(const internal::StepPlan& plan,
                                        std::vector<float>& logits) {
  for (const auto& copy : plan.block_copies()) {
    kv_cache_.CopyBlock(copy.src(), copy.dst());
  }
  const auto& c = config_;
  const int m = plan.token_ids_size();
  if (m == 0) {  // a step of tier traffic only
    logits.clear();
    return absl::OkStatus();
  }
  Resize(m);
  {
    int t = 0;
    for (const auto& seq : plan.sequences()) {
      for (int i = 0; i < seq.query_len(); ++i) {
        token_block_table_[t++] = seq.block_table().data();
      }
    }
  }
  const int dim = c.hidden_size;
  const int heads = shard_.heads(c);
  const int kv_heads = shard_.kv_heads(c);
  const int inter = shard_.intermediate(c);
  const int q_width = heads * c.head_dim;
  const int kv_width = kv_heads * c.head_dim;
  const int qkv_width = q_width + 2 * kv_width;
  const int32_t* positions = plan.positions().data();
  const bool parallel = comm_->size() > 1;

  // Vocabulary-parallel embedding: each rank fills the rows of the tokens
  // in its vocabulary slice, zeros elsewhere, and the all-reduce assembles x.
  cpu::EmbeddingLookup(weights_.embedding_table(), shard_.vocab_begin(c),
                       plan.token_ids().data(), m, x_.data());
  if (parallel)
    RETURN_IF_ERROR(Collective([&] {
      return comm_->AllReduceSum({x_.data(), size_t(m) * dim});
    }));

  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    const cpu::PagedKvLayer cache = kv_cache_.layer(l);

    // Attention block: x += o_proj(attention(rope(qkv(norm(x))))), this
    // rank's heads only; the row-parallel o_proj's partial sums meet in one
    // all-reduce.
    cpu::RmsNorm(x_.data(), w.attn_norm.data(), m, dim, c.rms_norm_eps,
                 h_.data());
    cpu::MatMul(h_.data(), m, dim, w.qkv,
                w.qkv_bias.empty() ? nullptr : w.qkv_bias.data(), qkv_.data(),
                qkv_width);
    float* q = qkv_.data();
    float* k = q + q_width;
    float* v = k + kv_width;
    cpu::ApplyRope(q, m, qkv_width, heads, positions, rope_);
    cpu::ApplyRope(k, m, qkv_width, kv_heads, positions, rope_);
    cpu::WriteKv(k, v, qkv_width, m, plan.slot_mapping().data(), cache);
    cpu::PagedAttention(q, qkv_width, m, heads, cache, positions,
                        token_block_table_.data(), attn_.data());
    cpu::MatMul(attn_.data(), m, q_width, w.o, nullptr, proj_.data(), dim);
    if (parallel)
      RETURN_IF_ERROR(Collective([&] {
        return comm_->AllReduceSum({proj_.data(), size_t(m) * dim});
      }));
    cpu::AddInPlace(x_.data(), proj_.data(), size_t(m) * dim);

    // MLP block: x += down(silu(gate(norm(x))) * up(norm(x))), this rank's
    // features only, then one all-reduce.
    cpu::RmsNorm(x_.data(), w.mlp_norm.data(), m, dim, c.rms_norm_eps,
                 h_.data());
    cpu::MatMul(h_.data(), m, dim, w.gate_up, nullptr, gate_up_.data(),
                2 * inter);
    cpu::SiluMul(gate_up_.data(), m, inter, act_.data());
    cpu::MatMul(act_.data(), m, inter, w.down, nullptr, proj_.data(), dim);
    if (parallel)
      RETURN_IF_ERROR(Collective([&] {
        return comm_->AllReduceSum({proj_.data(), size_t(m) * dim});
      }));
    cpu::AddInPlace(x_.data(), proj_.data(), size_t(m) * dim);
  }

  // Only the rows that sample need the final norm and the classifier, the
  // most expensive matrix of a small model.
  const int rows = plan.logits_rows_size();
  for (int r = 0; r < rows; ++r) {
    std::copy_n(x_.data() + size_t(plan.logits_rows(r)) * dim, dim,
                proj_.data() + size_t(r) * dim);
  }
  cpu::RmsNorm(proj_.data(), weights_.final_norm.data(), rows, dim,
               c.rms_norm_eps, h_.data());
  logits.resize(size_t(rows) * c.vocab_size);
  if (!parallel) {
    cpu::MatMul(h_.data(), rows, dim, weights_.lm_head, nullptr, logits.data(),
                c.vocab_size);
    return absl::OkStatus();
  }
  // Vocabulary-parallel classifier: each rank's padded slice, gathered and
  // laid out as [rows, vocab].
  const int per_rank = shard_.vocab_per_rank(c);
  local_logits_.resize(size_t(rows) * per_rank);
  cpu::MatMul(h_.data(), rows, dim, weights_.lm_head, nullptr,
              local_logits_.data(), per_rank);
  std::vector<float> gathered(size_t(comm_->size()) * rows * per_rank);
  RETURN_IF_ERROR(
      Collective([&] { return comm_->AllGather(local_logits_, gathered); }));
  for (int r = 0; r < comm_->size(); ++r) {
    const int begin = r * per_rank;
    const int count = std::min(c.vocab_size, begin + per_rank) - begin;
    for (int row = 0; row < rows; ++row) {
      std::copy_n(gathered.data() + (size_t(r) * rows + row) * per_rank, count,
                  logits.data() + size_t(row) * c.vocab_size + begin);
    }
  }
  return absl::OkStatus();
}

}  // namespace hydra::worker
