// hydra_dump_logits: runs hydra's forward pass on one prompt, as the server
// would (one prefill step, then one step per greedy token over the paged KV
// cache), and writes every step's full logits row, so that an independent
// implementation (tests/reference/llama_reference.py) can check them.
//
//   hydra_dump_logits --model=DIR --prompt_ids=1,2,3 --decode_steps=8
//       --out=PREFIX
//
// writes PREFIX.json ({"prompt_ids", "tokens", "positions", "vocab_size",
// "rows", "weight_dtype", "kv_cache_dtype"}: tokens[i] is the argmax of row
// i, positions[i] the position whose logits row i holds) and PREFIX.f32 (rows
// x vocab_size little-endian float32, row-major). Row 0 is the prefill's last
// token; row i > 0 is decode step i, fed tokens[i - 1].
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "engine/sampler.h"
#include "nlohmann/json.hpp"
#include "worker/model_runner.h"
#include "worker/step_plan_builder.h"

ABSL_FLAG(std::string, model, "", "Model folder (config.json, safetensors)");
ABSL_FLAG(std::string, prompt_ids, "", "Comma-separated prompt token ids");
ABSL_FLAG(int, decode_steps, 8, "Greedy decode steps after the prefill");
ABSL_FLAG(std::string, out, "", "Output prefix: PREFIX.json and PREFIX.f32");
ABSL_FLAG(int, block_size, 16, "KV cache block size (tokens)");
ABSL_FLAG(std::string, weight_dtype, "auto",
          "Weight format: auto (the checkpoint's), fp32, bf16, f16 or int8");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "KV cache format: auto (bf16 for half-precision checkpoints, else "
          "fp32), fp32, bf16, f16 or int8");

namespace {

namespace fs = std::filesystem;
using hydra::worker::ModelRunner;

absl::StatusOr<std::vector<int>> ParseIds(const std::string& text) {
  std::vector<int> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--prompt_ids: \"", std::string(part), "\" is not an integer"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) {
    return absl::InvalidArgumentError("--prompt_ids must name a token");
  }
  return ids;
}

// The one place the runner is built.
absl::StatusOr<std::unique_ptr<ModelRunner>> LoadRunner(
    const fs::path& dir, int block_size, int num_blocks,
    const std::string& weight_dtype, const std::string& kv_cache_dtype) {
  return ModelRunner::Load(
      dir, hydra::worker::RunnerOptions{.block_size = block_size,
                                        .num_blocks = num_blocks,
                                        .weight_dtype = weight_dtype,
                                        .kv_cache_dtype = kv_cache_dtype});
}

absl::Status Run() {
  const fs::path model_dir = absl::GetFlag(FLAGS_model);
  const std::string out = absl::GetFlag(FLAGS_out);
  const int steps = absl::GetFlag(FLAGS_decode_steps);
  const int bs = absl::GetFlag(FLAGS_block_size);
  if (model_dir.empty() || out.empty()) {
    return absl::InvalidArgumentError("--model and --out are required");
  }
  if (steps < 0 || bs <= 0) {
    return absl::InvalidArgumentError(
        "--decode_steps must be >= 0 and --block_size > 0");
  }
  ASSIGN_OR_RETURN(const std::vector<int> prompt,
                   ParseIds(absl::GetFlag(FLAGS_prompt_ids)));

  // Exactly the blocks the sequence needs, handed out in reverse so that
  // logical and physical block order differ.
  const int total = static_cast<int>(prompt.size()) + steps;
  const int num_blocks = (total + bs - 1) / bs;
  std::vector<int> table(num_blocks);
  std::iota(table.rbegin(), table.rend(), 0);
  ASSIGN_OR_RETURN(
      std::unique_ptr<ModelRunner> runner,
      LoadRunner(model_dir, bs, num_blocks, absl::GetFlag(FLAGS_weight_dtype),
                 absl::GetFlag(FLAGS_kv_cache_dtype)));
  const int vocab = runner->config().vocab_size;

  hydra::worker::StepPlanBuilder builder(bs);
  std::vector<float> all_logits, logits;
  std::vector<int> tokens, positions;
  builder.Add(prompt, 0, table, /*want_logits=*/true);
  int position = static_cast<int>(prompt.size());  // the next token's
  for (int step = 0; step <= steps; ++step) {
    if (step > 0) {
      builder.Add(std::span<const int>(&tokens.back(), 1), position, table,
                  /*want_logits=*/true);
      ++position;
    }
    RETURN_IF_ERROR(runner->Step(builder.Take(), logits));
    if (logits.size() != static_cast<size_t>(vocab)) {
      return absl::InternalError(absl::StrCat("step ", step, " returned ",
                                              logits.size(),
                                              " logits, expected ", vocab));
    }
    all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    tokens.push_back(hydra::engine::Argmax(logits));
    positions.push_back(position - 1);
  }

  std::ofstream raw(out + ".f32", std::ios::binary | std::ios::trunc);
  raw.write(reinterpret_cast<const char*>(all_logits.data()),
            static_cast<std::streamsize>(all_logits.size() * sizeof(float)));
  raw.close();
  nlohmann::ordered_json meta = {
      {"model", model_dir.string()},
      {"prompt_ids", prompt},
      {"tokens", tokens},
      {"positions", positions},
      {"vocab_size", vocab},
      {"rows", tokens.size()},
      {"weight_dtype", runner->weight_dtype()},  // "auto" resolved
      {"kv_cache_dtype", runner->kv_cache_dtype()}};
  std::ofstream json(out + ".json", std::ios::trunc);
  json << meta.dump(1) << "\n";
  json.close();
  if (!raw || !json) {
    return absl::UnavailableError(
        absl::StrCat(out, ".{f32,json}: write failed"));
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = Run(); !s.ok()) {
    std::fprintf(stderr, "hydra_dump_logits: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
