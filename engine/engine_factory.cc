#include "engine/engine_factory.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <future>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/config.h"
#include "scheduler/block_manager.h"
#include "worker/model_runner.h"
#include "worker/precision.h"
#ifdef HYDRA_CUDA
#include "worker/cuda/cuda_plugin.h"
#endif

namespace hydra::engine {

namespace {

// Sizes are positive and the model splits over the ranks.
absl::Status CheckOptions(const EngineOptions& options,
                          const model::ModelConfig& config) {
  const scheduler::SchedulerConfig& scheduling = options.scheduling;
  if (options.block_size <= 0 || scheduling.max_batched_tokens <= 0 ||
      scheduling.max_running <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_size, max_batched_tokens and max_running must be positive (got ",
        options.block_size, ", ", scheduling.max_batched_tokens, ", ",
        scheduling.max_running, ")"));
  }
  if (!(scheduling.max_step_ms >= 0) ||
      !std::isfinite(scheduling.max_step_ms)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_step_ms must be 0 (no time budget) or a positive "
                     "number of milliseconds (got ",
                     scheduling.max_step_ms, ")"));
  }
  if (scheduling.max_partial_prefills <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_partial_prefills must be at least 1 (got ",
                     scheduling.max_partial_prefills, ")"));
  }
  RETURN_IF_ERROR(scheduler::CheckSpeculativeConfig(scheduling.speculative));
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
  return shape.BlocksForBudget(options.kv_cache_bytes);
}

// What can be said of an explicit --max_model_len before the pool is known.
absl::Status CheckRequestedMaxModelLen(int requested,
                                       int max_position_embeddings) {
  if (requested == 0) return absl::OkStatus();  // the default
  if (requested < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_model_len: got ", requested,
        "; it must be at least 2 (one prompt token and one generated), or 0 "
        "for the default"));
  }
  if (requested > max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_model_len: ", requested,
                     " exceeds the model's max_position_embeddings of ",
                     max_position_embeddings));
  }
  return absl::OkStatus();
}

std::string CpuPool(const EngineOptions& options) {
  return absl::StrCat("the KV budget of ", options.kv_cache_bytes, " bytes");
}

// A runner on options.device, its KV pool's block count and the context cap
// chosen for that pool.
struct LoadedRunner {
  std::unique_ptr<worker::StepRunner> runner;
  int num_blocks = 0;
  int max_model_len = 0;
};

absl::StatusOr<LoadedRunner> LoadRunner(const EngineOptions& options) {
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(options.model_dir));
  if (options.device == "cpu") {
    // The cap is known before the weights load, so the runner's RoPE table
    // and position checks cover exactly max_model_len positions.
    ASSIGN_OR_RETURN(const int num_blocks, KvBlocks(options, config));
    ASSIGN_OR_RETURN(const int max_model_len,
                     ResolveMaxModelLen(
                         options.max_model_len, config.max_position_embeddings,
                         num_blocks, options.block_size, CpuPool(options)));
    ASSIGN_OR_RETURN(auto runner, worker::ModelRunner::Load(
                                      options.model_dir,
                                      {.block_size = options.block_size,
                                       .num_blocks = num_blocks,
                                       .weight_dtype = options.weight_dtype,
                                       .kv_cache_dtype = options.kv_cache_dtype,
                                       .max_positions = max_model_len,
                                       .kv_tiers = options.kv_tiers},
                                      options.comm));
    return LoadedRunner{std::move(runner), num_blocks, max_model_len};
  }
  if (options.device != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device: '", options.device, "' is not one of cpu, cuda"));
  }
#ifdef HYDRA_CUDA
  // The pool comes from free device memory, not kv_cache_bytes, and is only
  // known once the runner holds its weights; the runner covers every
  // position of the model, the engine enforces the cap chosen here.
  RETURN_IF_ERROR(CheckOptions(options, config));
  // Refused before minutes of loading weights onto the device.
  RETURN_IF_ERROR(CheckRequestedMaxModelLen(options.max_model_len,
                                            config.max_position_embeddings));
  gpu::CudaPluginOptions cuda;
  cuda.block_size = options.block_size;
  cuda.memory_fraction = options.gpu_memory_fraction;
  cuda.max_seqs = options.scheduling.max_running;
  cuda.max_tokens = std::max(options.scheduling.max_batched_tokens,
                             options.scheduling.max_running);
  cuda.kv_tiers = options.kv_tiers;
  ASSIGN_OR_RETURN(const gpu::CudaPluginLoad load, gpu::LoadCudaPlugin());
  ASSIGN_OR_RETURN(gpu::CudaPluginRunner loaded,
                   load(options.model_dir, cuda, options.comm));
  auto runner = std::move(loaded.runner);
  const int num_blocks = loaded.num_blocks;
  ASSIGN_OR_RETURN(
      const int max_model_len,
      ResolveMaxModelLen(options.max_model_len, config.max_position_embeddings,
                         num_blocks, options.block_size,
                         absl::StrCat("the GPU KV pool (--gpu_memory_fraction=",
                                      options.gpu_memory_fraction, ")")));
  return LoadedRunner{std::move(runner), num_blocks, max_model_len};
#else
  return absl::FailedPreconditionError(
      "--device=cuda: this hydra was built without CUDA; rebuild with "
      "-DHYDRA_CUDA=ON");
#endif
}

}  // namespace

absl::StatusOr<int> ResolveMaxModelLen(int requested,
                                       int max_position_embeddings,
                                       int num_blocks, int block_size,
                                       const std::string& pool) {
  const int64_t pool_tokens = int64_t{num_blocks} * block_size;
  if (requested == 0) {
    // The largest multiple of block_size the pool holds, never beyond the
    // model's own context.
    const int64_t fit = std::min<int64_t>(pool_tokens, max_position_embeddings);
    if (fit < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          pool, " holds ", pool_tokens,
          " token(s); a sequence needs at least 2 (one prompt token and one "
          "generated)"));
    }
    return static_cast<int>(fit);
  }
  RETURN_IF_ERROR(
      CheckRequestedMaxModelLen(requested, max_position_embeddings));
  const int needed = scheduler::BlocksFor(requested, block_size);
  if (needed > num_blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_model_len: one sequence of ", requested,
                     " tokens needs ", needed, " KV blocks of ", block_size,
                     ", but ", pool, " holds ", num_blocks, " (", pool_tokens,
                     " tokens); lower --max_model_len or raise the KV budget"));
  }
  return requested;
}

std::string ShortenedContextNote(const EngineOptions& options,
                                 const Engine& engine,
                                 const std::string& budget_flag) {
  const int context = engine.model_config().max_position_embeddings;
  const int cap = engine.config().max_model_len;
  if (options.max_model_len != 0 || cap >= context) return "";
  const std::string pool =
      options.device == "cpu" ? CpuPool(options)
                              : absl::StrCat("the GPU KV pool of ",
                                             engine.kv_cache_bytes(), " bytes");
  const std::string raise = options.device == "cpu"
                                ? budget_flag
                                : std::string("--gpu_memory_fraction");
  return absl::StrCat(
      "max_model_len ", cap, " (", pool, " holds ",
      int64_t{engine.config().num_blocks} * engine.config().block_size,
      " tokens; the model's context is ", context, "; raise ", raise,
      " or set --max_model_len)");
}

absl::StatusOr<std::unique_ptr<worker::StepRunner>> LoadWorkerRunner(
    const EngineOptions& options) {
  ASSIGN_OR_RETURN(LoadedRunner loaded, LoadRunner(options));
  return std::move(loaded.runner);
}

absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(
    const EngineOptions& options) {
  // The tokenizer loads on its own thread while the weights pack: parsing
  // a real model's tokenizer.json takes about as long as packing its
  // weights, and start-up is the longer of the two, not their sum.
  auto tokenizer_load = std::async(std::launch::async, [&] {
    return model::Tokenizer::LoadFromModelDir(options.model_dir);
  });
  absl::StatusOr<LoadedRunner> runner_load = LoadRunner(options);
  ASSIGN_OR_RETURN(auto tokenizer, tokenizer_load.get());
  ASSIGN_OR_RETURN(LoadedRunner loaded, std::move(runner_load));
  auto runner = std::move(loaded.runner);
  // A tokenizer of another model would serve garbage and refuse text
  // prompts with a message about token ids; say what is wrong at start.
  if (tokenizer->vocab_size() > runner->config().vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("the tokenizer in ", options.model_dir, " has ",
                     tokenizer->vocab_size(),
                     " ids but the model's vocab_size (config.json) "
                     "is ",
                     runner->config().vocab_size,
                     ": the tokenizer belongs to another model"));
  }
  const int num_blocks = loaded.num_blocks;
  EngineConfig engine_config;
  engine_config.block_size = options.block_size;
  engine_config.num_blocks = num_blocks;
  engine_config.scheduling = options.scheduling;
  engine_config.enable_prefix_cache = options.enable_prefix_cache;
  engine_config.max_pinned_blocks = static_cast<int>(
      std::clamp(options.pinned_kv_fraction, 0.0, 1.0) * num_blocks);
  engine_config.max_waiting = options.max_waiting;
  engine_config.max_model_len = loaded.max_model_len;
  return std::make_unique<Engine>(engine_config, std::move(runner),
                                  std::move(tokenizer));
}

}  // namespace hydra::engine
