// Builds an Engine from a model folder and a KV memory budget.
#ifndef HYDRA_SERVER_ENGINE_FACTORY_H_
#define HYDRA_SERVER_ENGINE_FACTORY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/engine.h"
#include "worker/communicator.h"

namespace hydra {

struct EngineOptions {
  std::string model_dir;
  size_t kv_cache_bytes = size_t(256) << 20;  // per rank
  int block_size = 16;
  int max_batched_tokens = 2048;
  int max_running = 256;
  bool enable_prefix_cache = true;
  int max_waiting = 1 << 30;
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
};

// Loads the model and tokenizer, sizes the KV pool from the budget (at least
// one sequence at the model's full context must fit) and starts the loop.
absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(
    const EngineOptions& options);

// Ranks 1..N-1: the same shard of the model and the same KV pool as rank 0
// computes for this rank, without an engine; run its worker loop.
absl::StatusOr<std::unique_ptr<worker::StepRunner>> LoadWorkerRunner(
    const EngineOptions& options);

}  // namespace hydra

#endif  // HYDRA_SERVER_ENGINE_FACTORY_H_
