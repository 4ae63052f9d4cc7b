#include "server/engine_factory.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/config.h"

namespace hydra {

namespace {

// The KV pool's block count: the per-rank budget over the bytes of one
// block of this rank's KV heads, so capacity in tokens grows with the number
// of ranks. Every rank computes the same count.
absl::StatusOr<int> KvBlocks(const EngineOptions& options,
                             const model::ModelConfig& config) {
  if (options.block_size <= 0 || options.max_batched_tokens <= 0 ||
      options.max_running <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_size, max_batched_tokens and max_running must be positive (got ",
        options.block_size, ", ", options.max_batched_tokens, ", ",
        options.max_running, ")"));
  }
  const int ranks = options.comm == nullptr ? 1 : options.comm->size();
  RETURN_IF_ERROR(worker::Shard::Check(config, ranks));
  const worker::KvCacheShape shape{config.num_layers,
                                   config.num_kv_heads / ranks, config.head_dim,
                                   options.block_size};
  ASSIGN_OR_RETURN(const int num_blocks,
                   shape.BlocksForBudget(options.kv_cache_bytes));
  const int full_context =
      scheduler::BlocksFor(config.max_position_embeddings, options.block_size);
  if (num_blocks < full_context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache budget of ", options.kv_cache_bytes, " bytes holds ",
        num_blocks, " blocks; one sequence at the full context of ",
        config.max_position_embeddings, " tokens needs ", full_context, " (",
        full_context * shape.bytes_per_block(), " bytes)"));
  }
  return num_blocks;
}

}  // namespace

absl::StatusOr<std::unique_ptr<worker::ModelRunner>> LoadWorkerRunner(
    const EngineOptions& options) {
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(options.model_dir));
  ASSIGN_OR_RETURN(const int num_blocks, KvBlocks(options, config));
  return worker::ModelRunner::Load(options.model_dir, options.block_size,
                                   num_blocks, options.comm);
}

absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(
    const EngineOptions& options) {
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(options.model_dir));
  ASSIGN_OR_RETURN(const int num_blocks, KvBlocks(options, config));
  ASSIGN_OR_RETURN(auto runner, worker::ModelRunner::Load(
                                    options.model_dir, options.block_size,
                                    num_blocks, options.comm));
  ASSIGN_OR_RETURN(auto tokenizer, model::Tokenizer::Load(options.model_dir +
                                                          "/tokenizer.model"));
  EngineConfig engine_config;
  engine_config.block_size = options.block_size;
  engine_config.num_blocks = num_blocks;
  engine_config.max_batched_tokens = options.max_batched_tokens;
  engine_config.max_running = options.max_running;
  engine_config.enable_prefix_cache = options.enable_prefix_cache;
  engine_config.max_waiting = options.max_waiting;
  return std::make_unique<Engine>(engine_config, std::move(runner),
                                  std::move(tokenizer));
}

}  // namespace hydra
