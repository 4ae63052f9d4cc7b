#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/tokenizer.h"
#include "server/commands.h"
#include "worker/model_runner.h"
#include "worker/sampler.h"
#include "worker/step_plan_builder.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(std::string, prompt, "Once upon a time", "Text to continue");
ABSL_FLAG(int, max_tokens, 256, "Most tokens to generate");
ABSL_FLAG(float, temperature, 1.0f, "Sampling temperature; 0 = greedy");
ABSL_FLAG(int, top_k, 0, "Sample among the k most likely tokens; 0 = all");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus sampling mass in (0, 1]");
ABSL_FLAG(int64_t, seed, -1, "Random seed; -1 = from the clock");
ABSL_FLAG(int, threads, 0, "CPU threads; 0 = OpenMP's default");

namespace hydra {
namespace {

constexpr int kBlockSize = 16;

absl::Status CheckFlags() {
  if (absl::GetFlag(FLAGS_max_tokens) <= 0) {
    return absl::InvalidArgumentError("--max_tokens must be positive");
  }
  if (absl::GetFlag(FLAGS_temperature) < 0) {
    return absl::InvalidArgumentError(
        "--temperature must be >= 0 (0 = greedy)");
  }
  if (absl::GetFlag(FLAGS_top_k) < 0) {
    return absl::InvalidArgumentError("--top_k must be >= 0 (0 = no limit)");
  }
  const float top_p = absl::GetFlag(FLAGS_top_p);
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError("--top_p must be in (0, 1]");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunGenerate() {
  RETURN_IF_ERROR(CheckFlags());
  if (absl::GetFlag(FLAGS_threads) > 0)
    omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  const std::string dir = absl::GetFlag(FLAGS_model);
  ASSIGN_OR_RETURN(model::ModelConfig config, model::LoadModelConfig(dir));
  const int max_pos = config.max_position_embeddings;
  const int blocks = (max_pos + kBlockSize - 1) / kBlockSize;
  ASSIGN_OR_RETURN(auto runner,
                   worker::ModelRunner::Load(dir, kBlockSize, blocks));
  ASSIGN_OR_RETURN(auto tokenizer,
                   model::Tokenizer::Load(dir + "/tokenizer.model"));
  ASSIGN_OR_RETURN(std::vector<int> tokens,
                   tokenizer->Encode(absl::GetFlag(FLAGS_prompt)));
  if (static_cast<int>(tokens.size()) > max_pos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--prompt is ", tokens.size(),
                     " tokens; the model's context holds ", max_pos));
  }

  std::vector<int> block_table(blocks);
  for (int b = 0; b < blocks; ++b) block_table[b] = b;
  int64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed < 0) seed = std::random_device{}();
  worker::Sampler sampler(
      {absl::GetFlag(FLAGS_temperature), absl::GetFlag(FLAGS_top_k),
       absl::GetFlag(FLAGS_top_p), static_cast<uint64_t>(seed)});
  model::IncrementalDetokenizer detok(*tokenizer, tokens);
  worker::StepPlanBuilder builder(kBlockSize);
  std::vector<float> logits;
  const int prompt_len = static_cast<int>(tokens.size());
  const auto& eos = config.eos_token_ids;

  std::printf("%s", absl::GetFlag(FLAGS_prompt).c_str());
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  auto first_token = start;
  builder.Add(tokens, 0, block_table, /*want_logits=*/true);
  int generated = 0;
  while (true) {
    RETURN_IF_ERROR(runner->Step(builder.Take(), logits));
    const int next = sampler.Sample(logits);
    if (generated == 0) first_token = std::chrono::steady_clock::now();
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    ASSIGN_OR_RETURN(std::string delta, detok.Push(next));
    std::printf("%s", delta.c_str());
    std::fflush(stdout);
    tokens.push_back(next);
    ++generated;
    // The new token is fed at the next position, if the context has one.
    const int position = static_cast<int>(tokens.size()) - 1;
    if (generated >= absl::GetFlag(FLAGS_max_tokens) || position >= max_pos)
      break;
    builder.Add(std::span<const int>(&tokens[position], 1), position,
                block_table,
                /*want_logits=*/true);
  }
  ASSIGN_OR_RETURN(std::string tail, detok.Flush());
  std::printf("%s\n", tail.c_str());
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now();
  const double total_s = std::chrono::duration<double>(end - start).count();
  const double decode_s =
      std::chrono::duration<double>(end - first_token).count();
  std::fprintf(stderr,
               "prompt tokens: %d, generated tokens: %d, time to first token: "
               "%.1f ms, decode: %.1f tokens/s, overall: %.1f tokens/s\n",
               prompt_len, generated,
               1e3 * std::chrono::duration<double>(first_token - start).count(),
               generated > 1 ? (generated - 1) / decode_s : 0.0,
               generated / total_s);
  return absl::OkStatus();
}

}  // namespace hydra
