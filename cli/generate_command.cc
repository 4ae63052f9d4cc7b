// hydra generate: offline generation through the engine. One --prompt
// streams its continuation as it is produced; --prompts_file runs every line
// as its own request, all batched together, and prints each completion.
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/status_macros.h"
#include "engine/engine_factory.h"
#include "worker/non_finite_weights.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(std::string, prompt, "Once upon a time", "Text to continue");
ABSL_FLAG(std::string, prompts_file, "",
          "A file with one prompt per line; all run together as a batch");
ABSL_FLAG(int, max_tokens, 256, "Most tokens to generate per prompt");
ABSL_FLAG(float, temperature, 1.0f, "Sampling temperature; 0 = greedy");
ABSL_FLAG(int, top_k, 0, "Sample among the k most likely tokens; 0 = all");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus sampling mass in (0, 1]");
ABSL_FLAG(int64_t, seed, -1, "Random seed; -1 = a fresh one per prompt");
ABSL_FLAG(int, threads, 0, "CPU threads; 0 = OpenMP's default");
ABSL_FLAG(int, kv_cache_mb, 256,
          "KV cache memory budget, MiB (--device=cpu; on cuda the pool is "
          "sized by --gpu_memory_fraction)");
// Shared with `hydra serve`, which defines them.
ABSL_DECLARE_FLAG(std::string, device);
ABSL_DECLARE_FLAG(double, gpu_memory_fraction);

namespace hydra::cli {
namespace {

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

absl::StatusOr<std::vector<std::string>> Prompts() {
  const std::string file = absl::GetFlag(FLAGS_prompts_file);
  if (file.empty())
    return std::vector<std::string>{absl::GetFlag(FLAGS_prompt)};
  std::ifstream in(file);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("--prompts_file: cannot open ", file));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) prompts.push_back(line);
  }
  if (prompts.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--prompts_file: ", file, " has no prompts"));
  }
  return prompts;
}

struct Completion {
  std::string text;
  engine::EngineOutput last;
  bool done = false;
};

}  // namespace

absl::Status RunGenerate() {
  RETURN_IF_ERROR(CheckFlags());
  if (absl::GetFlag(FLAGS_threads) > 0)
    omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  ASSIGN_OR_RETURN(const std::vector<std::string> prompts, Prompts());
  engine::EngineOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.kv_cache_bytes = size_t(absl::GetFlag(FLAGS_kv_cache_mb)) << 20;
  options.device = absl::GetFlag(FLAGS_device);
  options.gpu_memory_fraction = absl::GetFlag(FLAGS_gpu_memory_fraction);
  RETURN_IF_ERROR(ApplyEngineFlags(options));
  const absl::Time load_start = absl::Now();
  ASSIGN_OR_RETURN(auto engine, engine::LoadEngine(options));
  std::fprintf(stderr, "[hydra] %s\n",
               DescribeLoadedEngine(*engine, absl::Now() - load_start).c_str());
  if (const std::string note =
          engine::ShortenedContextNote(options, *engine, "--kv_cache_mb");
      !note.empty()) {
    std::fprintf(stderr, "[hydra] %s\n", note.c_str());
  }
  if (const std::string warning =
          worker::NonFiniteWeightsWarning(engine->non_finite_weights());
      !warning.empty()) {
    std::fprintf(stderr, "[hydra] %s\n", warning.c_str());
  }
  const bool stream = prompts.size() == 1;

  absl::Mutex mu;
  std::vector<Completion> completions(prompts.size());
  int finished = 0;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine::EngineRequest request;
    ASSIGN_OR_RETURN(request.prompt_ids,
                     engine->tokenizer().Encode(prompts[i]));
    request.sampling.temperature = absl::GetFlag(FLAGS_temperature);
    request.sampling.top_k = absl::GetFlag(FLAGS_top_k);
    request.sampling.top_p = absl::GetFlag(FLAGS_top_p);
    if (absl::GetFlag(FLAGS_seed) >= 0) {
      request.sampling.seed = absl::GetFlag(FLAGS_seed) + i;
      request.seed_set = true;
    }
    request.stopping.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    if (stream) {
      std::printf("%s", prompts[i].c_str());
      std::fflush(stdout);
    }
    auto on_output = [&, i](engine::EngineOutput out) {
      if (stream) {
        std::printf("%s", out.text.c_str());
        std::fflush(stdout);
      }
      absl::MutexLock lock(&mu);
      completions[i].text += out.text;
      if (out.finished) {
        completions[i].last = std::move(out);
        completions[i].done = true;
        ++finished;
      }
    };
    auto id = engine->Submit(std::move(request), on_output);
    if (!id.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("prompt ", i + 1, ": ", id.status().message()));
  }
  {
    absl::MutexLock lock(&mu);
    const int total = static_cast<int>(prompts.size());
    auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return finished == total;
    };
    mu.Await(absl::Condition(&all_done));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (stream) std::printf("\n");
  int prompt_tokens = 0, generated = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Completion& c = completions[i];
    if (c.last.finish_reason == engine::FinishReason::kError) {
      return absl::InternalError(
          absl::StrCat("prompt ", i + 1, ": ", c.last.error));
    }
    prompt_tokens += c.last.usage.prompt_tokens;
    generated += c.last.usage.completion_tokens;
    if (!stream) {
      std::printf("--- %zu: %s\n%s%s\n", i + 1, prompts[i].c_str(),
                  prompts[i].c_str(), c.text.c_str());
    }
  }
  std::fflush(stdout);
  const double ttft =
      absl::ToDoubleMilliseconds(completions[0].last.times.first_token -
                                 completions[0].last.times.arrival);
  std::fprintf(stderr,
               "prompts: %zu, prompt tokens: %d, generated tokens: %d, time to "
               "first token: "
               "%.1f ms, %.1f s, %.1f generated tokens/s\n",
               prompts.size(), prompt_tokens, generated, ttft, seconds,
               generated / seconds);
  return absl::OkStatus();
}

}  // namespace hydra::cli
