// Builds an Engine from a model folder and a KV memory budget.
#ifndef HYDRA_ENGINE_ENGINE_FACTORY_H_
#define HYDRA_ENGINE_ENGINE_FACTORY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "scheduler/scheduler.h"
#include "worker/communicator.h"

namespace hydra::engine {

struct EngineOptions {
  std::string model_dir;
  size_t kv_cache_bytes = size_t(256) << 20;  // per rank
  int block_size = 16;
  scheduler::SchedulerConfig scheduling;
  bool enable_prefix_cache = true;
  // Share of the KV blocks that pinned prefixes may keep from eviction.
  double pinned_kv_fraction = 0.25;
  int max_waiting = 1 << 30;
  // KV tiers below the pool (host memory, a disk folder kept across
  // restarts), on every rank.
  worker::KvTierOptions kv_tiers;
  // Tensor parallelism: the world the heads are split over (not owned;
  // null = a world of one).
  worker::Communicator* comm = nullptr;
  // "cpu", or "cuda" (needs a build with -DHYDRA_CUDA=ON): the forward pass
  // on one GPU per rank, the KV pool sized from free device memory with
  // gpu_memory_fraction instead of kv_cache_bytes.
  std::string device = "cpu";
  double gpu_memory_fraction = 0.9;
  // Number formats on the CPU (worker/precision.h): "auto", "fp32", "bf16",
  // "f16" or "int8".
  std::string weight_dtype = "auto";
  std::string kv_cache_dtype = "auto";
  // The most tokens, prompt and output together, of one sequence (the
  // --max_model_len flag). 0 = the model's max_position_embeddings when the
  // KV pool holds one sequence that long, else the largest multiple of
  // block_size the pool holds. See ResolveMaxModelLen.
  int max_model_len = 0;
};

// The context cap the engine serves with, from the requested value (0 =
// the default), the model's max_position_embeddings and the KV pool of
// `num_blocks` blocks of `block_size` tokens (one sequence of the cap must
// fit, so that a lone sequence is never preempted for lack of blocks).
// `pool` describes the pool in errors, e.g. "the KV budget of N bytes".
// Refused, naming --max_model_len and both numbers: an explicit value below
// 2 (one prompt token and one generated), above max_position_embeddings, or
// one whose sequence the pool cannot hold.
absl::StatusOr<int> ResolveMaxModelLen(int requested,
                                       int max_position_embeddings,
                                       int num_blocks, int block_size,
                                       const std::string& pool);

// Loads the model and tokenizer, sizes the KV pool from the budget, picks
// max_model_len (ResolveMaxModelLen) and starts the loop.
absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(
    const EngineOptions& options);

// Ranks 1..N-1: the same shard of the model, the same KV pool and the same
// max_model_len as rank 0 computes for this rank, without an engine; run its
// worker loop.
absl::StatusOr<std::unique_ptr<worker::StepRunner>> LoadWorkerRunner(
    const EngineOptions& options);

// The startup log line for a default max_model_len shortened to fit the KV
// pool (options.max_model_len unset, the pool shorter than the model's
// context), naming `budget_flag`, the command's flag for the CPU budget;
// empty when the context was not shortened.
std::string ShortenedContextNote(const EngineOptions& options,
                                 const Engine& engine,
                                 const std::string& budget_flag);

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_ENGINE_FACTORY_H_
