#include "cli/engine_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

ABSL_FLAG(std::string, weight_dtype, "auto",
          "Weights in memory: auto (the checkpoint's dtype), fp32, bf16, f16, "
          "or int8 (per-block quantised at load, int8 dot products)");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "KV cache: auto (bf16 for half-precision checkpoints, else fp32), "
          "fp32, bf16, f16, or int8 (per-token-per-head scales)");

ABSL_FLAG(int, max_model_len, 0,
          "Most tokens, prompt and output together, of one request; 0 = the "
          "model's max_position_embeddings, or the largest multiple of "
          "--block_size that the KV cache holds when it cannot hold that "
          "(logged at start)");

namespace hydra::cli {

void ApplyEngineFlags(engine::EngineOptions& options) {
  options.weight_dtype = absl::GetFlag(FLAGS_weight_dtype);
  options.kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
}

std::string DescribeLoadedEngine(const engine::Engine& engine,
                                 absl::Duration load_time) {
  const engine::EngineConfig& c = engine.config();
  return absl::StrFormat(
      "loaded in %.2f s: weights %s (%.2f GB resident), KV %s, capacity %d "
      "tokens in %d blocks of %d (%.2f GB reserved)",
      absl::ToDoubleSeconds(load_time), engine.weight_dtype(),
      engine.weight_bytes() / 1e9, engine.kv_cache_dtype(),
      int64_t{c.num_blocks} * c.block_size, c.num_blocks, c.block_size,
      engine.kv_cache_bytes() / 1e9);
}

}  // namespace hydra::cli
