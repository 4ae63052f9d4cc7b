#include "cli/engine_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/speculative_config.h"

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

ABSL_FLAG(std::string, speculative, "none",
          "Speculative decoding: none, or ngram (prompt lookup: each decode "
          "also verifies up to --spec_tokens drafts copied from where its "
          "last --spec_ngram tokens occurred before in prompt or output; "
          "same outputs, more tokens per step when the output copies)");
ABSL_FLAG(int, spec_tokens, 4,
          "--speculative=ngram: most draft tokens per decode, 1..16");
ABSL_FLAG(int, spec_ngram, 3,
          "--speculative=ngram: tokens matched to find drafts, 1..8");

namespace hydra::cli {

absl::Status ApplyEngineFlags(engine::EngineOptions& options) {
  options.weight_dtype = absl::GetFlag(FLAGS_weight_dtype);
  options.kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  absl::StatusOr<scheduler::SpeculativeConfig> speculative =
      scheduler::ParseSpeculativeConfig(absl::GetFlag(FLAGS_speculative),
                                        absl::GetFlag(FLAGS_spec_tokens),
                                        absl::GetFlag(FLAGS_spec_ngram));
  if (!speculative.ok()) return speculative.status();
  options.scheduling.speculative = *speculative;
  return absl::OkStatus();
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
