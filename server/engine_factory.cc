#include "server/engine_factory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/config.h"
#include "worker/model_runner.h"
#include "worker/precision.h"
#ifdef HYDRA_CUDA
#include "worker/cuda/cuda_plugin.h"
#endif

namespace hydra {

namespace {

// Sizes are positive and the model splits over the ranks.
absl::Status CheckOptions(const EngineOptions& options,
                          const model::ModelConfig& config) {
  if (options.block_size <= 0 || options.max_batched_tokens <= 0 ||
      options.max_running <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_size, max_batched_tokens and max_running must be positive (got ",
        options.block_size, ", ", options.max_batched_tokens, ", ",
        options.max_running, ")"));
  }
  const int ranks = options.comm == nullptr ? 1 : options.comm->size();
  return worker::Shard::Check(config, ranks);
}

// The KV pool's block count: the per-rank budget over the bytes of one
// block of this rank's KV heads, so capacity in tokens grows with the number
// of ranks. Every rank computes the same count.
absl::StatusOr<int> KvBlocks(const EngineOptions& options,
                             const model::ModelConfig& config) {
  RETURN_IF_ERROR(CheckOptions(options, config));
  const int ranks = options.comm == nullptr ? 1 : options.comm->size();
  ASSIGN_OR_RETURN(const model::Checkpoint checkpoint,
                   model::Checkpoint::Open(options.model_dir));
  ASSIGN_OR_RETURN(
      const worker::Precision precision,
      worker::ResolvePrecision(options.weight_dtype, options.kv_cache_dtype,
                               checkpoint));
  const worker::KvCacheShape shape{config.num_layers,
                                   config.num_kv_heads / ranks, config.head_dim,
                                   options.block_size, precision.kv_cache};
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

// A runner on options.device and its KV pool's block count.
struct LoadedRunner {
  std::unique_ptr<worker::StepRunner> runner;
  int num_blocks = 0;
};

absl::StatusOr<LoadedRunner> LoadRunner(const EngineOptions& options) {
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(options.model_dir));
  if (options.device == "cpu") {
    ASSIGN_OR_RETURN(const int num_blocks, KvBlocks(options, config));
    ASSIGN_OR_RETURN(
        auto runner,
        worker::ModelRunner::Load(options.model_dir,
                                  {.block_size = options.block_size,
                                   .num_blocks = num_blocks,
                                   .weight_dtype = options.weight_dtype,
                                   .kv_cache_dtype = options.kv_cache_dtype},
                                  options.comm));
    return LoadedRunner{std::move(runner), num_blocks};
  }
  if (options.device != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device: '", options.device, "' is not one of cpu, cuda"));
  }
#ifdef HYDRA_CUDA
  // The pool comes from free device memory, not kv_cache_bytes.
  RETURN_IF_ERROR(CheckOptions(options, config));
  gpu::CudaPluginOptions cuda;
  cuda.block_size = options.block_size;
  cuda.memory_fraction = options.gpu_memory_fraction;
  cuda.max_seqs = options.max_running;
  cuda.max_tokens = std::max(options.max_batched_tokens, options.max_running);
  ASSIGN_OR_RETURN(const gpu::CudaPluginLoad load, gpu::LoadCudaPlugin());
  ASSIGN_OR_RETURN(gpu::CudaPluginRunner loaded,
                   load(options.model_dir, cuda, options.comm));
  auto runner = std::move(loaded.runner);
  const int num_blocks = loaded.num_blocks;
  const int full_context =
      scheduler::BlocksFor(config.max_position_embeddings, options.block_size);
  if (num_blocks < full_context) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the GPU KV pool holds ", num_blocks,
        " blocks; one sequence at the full context of ",
        config.max_position_embeddings, " tokens needs ", full_context,
        "; raise --gpu_memory_fraction or use more ranks"));
  }
  return LoadedRunner{std::move(runner), num_blocks};
#else
  return absl::FailedPreconditionError(
      "--device=cuda: this hydra was built without CUDA; rebuild with "
      "-DHYDRA_CUDA=ON");
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<worker::StepRunner>> LoadWorkerRunner(
    const EngineOptions& options) {
  ASSIGN_OR_RETURN(LoadedRunner loaded, LoadRunner(options));
  return std::move(loaded.runner);
}

absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(
    const EngineOptions& options) {
  ASSIGN_OR_RETURN(LoadedRunner loaded, LoadRunner(options));
  auto runner = std::move(loaded.runner);
  const int num_blocks = loaded.num_blocks;
  ASSIGN_OR_RETURN(auto tokenizer,
                   model::Tokenizer::LoadFromModelDir(options.model_dir));
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
