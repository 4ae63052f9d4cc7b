// Offline throughput through the engine (scheduler + worker + sampler):
// N requests submitted at once, greedy, ignore_eos, fixed output length.
// Runs the workload with random prompts and with a shared 48-token prefix,
// then the raw forward pass at the engine's concurrency for comparison.
// With --speculative: instead compares prompt-lookup speculative decoding
// (--spec_tokens, --spec_ngram) with plain decoding on a copy-heavy
// workload (passages, or random tokens, said several times) and on story
// openings (little to copy: the overhead), at 1 and --requests concurrent
// requests.
// Usage: hydra_engine_bench [--model=models/stories15M] [--requests=256]
//        [--speculative [--spec_tokens=4] [--spec_ngram=3]]
#include <cstdio>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/forward_workload.h"
#include "engine/engine_factory.h"
#include "scheduler/speculative_config.h"

ABSL_FLAG(std::string, model, "models/stories15M", "Model folder");
ABSL_FLAG(int, requests, 256, "Requests, all submitted at once");
ABSL_FLAG(int, output_tokens, 128, "New tokens per request");
ABSL_FLAG(int, max_running, 64, "Most sequences running at once");
ABSL_FLAG(int, kv_cache_mb, 1024, "KV cache budget, MiB");
ABSL_FLAG(bool, speculative, false,
          "Compare speculative decoding (ngram) with plain decoding on a "
          "story-opening and two copy-heavy workloads instead");
ABSL_FLAG(int, spec_tokens, 4, "--speculative: drafts per decode, 1..16");
ABSL_FLAG(int, spec_ngram, 3, "--speculative: tokens matched, 1..8");
ABSL_FLAG(int, spec_repeats, 3,
          "--speculative: runs of each case, the fastest reported");
ABSL_FLAG(int, max_model_len, 0,
          "Most prompt + output tokens per request; 0 = the model's context, "
          "or what the KV budget holds (as hydra serve)");

namespace hydra::bench {
namespace {

struct RunResult {
  double seconds = 0;
  // CPU time of the whole process (all threads) over the run: on a shared
  // machine less disturbed by other tenants than wall time.
  double cpu_seconds = 0;
  double last_first_token_s = 0;  // when the last request got its first token
  int64_t output_tokens = 0;
  engine::EngineStats stats;
  double peak_waste = 0;
  int64_t steps = 0;
  double step_seconds = 0;  // inside Engine::Step: schedule, forward, sample
  int64_t step_tokens = 0;
};

double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

enum class Prompts {
  kDistinct,       // random tokens
  kSharedPrefix,   // a shared 48-token random prefix, then random tokens
  kStory,          // the start of a story: natural text, little to copy
  kPassages,       // two story passages said three times
  kRepeatedRandom  // 24 random tokens said four times
};

// Story passages; kPassages says two of them three times over, the way a
// request to rewrite or continue a quoted text does.
constexpr const char* kPassages[] = {
    "Once upon a time, there was a little girl named Lily. She loved to play "
    "outside in the sunshine. ",
    "One day, a big dog came to the park. The dog was very happy and wanted "
    "to play with the ball. ",
    "Tom had a red car. He liked to drive it around the house and make loud "
    "noises. ",
    "The sun was hot, so Mom gave Ben a cold drink. Ben said thank you and "
    "smiled at her. ",
};

std::vector<int> TextPrompt(const model::Tokenizer& tokenizer, Prompts prompts,
                            int i) {
  constexpr int kCount = sizeof(kPassages) / sizeof(kPassages[0]);
  std::string text = kPassages[i % kCount];
  if (prompts == Prompts::kPassages) {
    text += kPassages[(i / kCount + i + 1) % kCount];
    text = text + text + text;
  }
  auto ids = tokenizer.Encode(text);
  if (!ids.ok()) std::exit(1);
  return *ids;
}

RunResult RunWorkload(Prompts prompts, int output_tokens,
                      bool prefix_cache = true, int requests = 0,
                      scheduler::SpeculativeConfig speculative = {}) {
  const bool shared_prefix = prompts == Prompts::kSharedPrefix;
  engine::EngineOptions options;
  options.scheduling.speculative = speculative;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.kv_cache_bytes = size_t(absl::GetFlag(FLAGS_kv_cache_mb)) << 20;
  options.scheduling.max_running = absl::GetFlag(FLAGS_max_running);
  options.enable_prefix_cache = prefix_cache;
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  auto engine = engine::LoadEngine(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    std::exit(1);
  }
  const int n = requests > 0 ? requests : absl::GetFlag(FLAGS_requests);
  absl::Mutex step_mu;
  double step_seconds = 0;
  int64_t steps = 0, step_tokens = 0;
  (*engine)->SetStepObserver([&](const engine::StepReport& step) {
    absl::MutexLock lock(&step_mu);
    step_seconds += absl::ToDoubleSeconds(step.duration);
    ++steps;
    step_tokens += step.prefill_tokens + step.decode_tokens;
  });
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> token(
      3, (*engine)->model_config().vocab_size - 1);
  std::vector<int> prefix(48);
  for (int& t : prefix) t = token(rng);

  absl::Mutex mu;
  int finished = 0;
  int64_t outputs = 0;
  absl::Time last_first_token;
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  for (int i = 0; i < n; ++i) {
    engine::EngineRequest r;
    const int len = 16 + rng() % 49;  // 16..64 tokens
    if (prompts == Prompts::kStory || prompts == Prompts::kPassages) {
      r.prompt_ids = TextPrompt((*engine)->tokenizer(), prompts, i);
    } else if (prompts == Prompts::kRepeatedRandom) {
      r.prompt_ids = {1};
      std::vector<int> part(24);
      for (int& t : part) t = token(rng);
      for (int k = 0; k < 4; ++k) {
        r.prompt_ids.insert(r.prompt_ids.end(), part.begin(), part.end());
      }
    } else {
      if (shared_prefix) r.prompt_ids.assign(prefix.begin(), prefix.end());
      r.prompt_ids.push_back(1);
      while (static_cast<int>(r.prompt_ids.size()) <
             (shared_prefix ? 48 + len : len)) {
        r.prompt_ids.push_back(token(rng));
      }
    }
    r.sampling.temperature = 0;
    r.stopping.max_tokens = output_tokens;
    r.stopping.ignore_eos = true;
    auto id = (*engine)->Submit(std::move(r), [&](engine::EngineOutput out) {
      absl::MutexLock lock(&mu);
      outputs += out.token_ids.size();
      if (out.finished) {
        ++finished;
        last_first_token = std::max(last_first_token, out.times.first_token);
      }
    });
    if (!id.ok()) std::exit(1);
  }
  absl::MutexLock lock(&mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return finished == n; };
  mu.Await(absl::Condition(&done));
  RunResult result;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  result.last_first_token_s = absl::ToDoubleSeconds(last_first_token - start);
  result.output_tokens = outputs;
  result.stats = (*engine)->stats();
  {
    absl::MutexLock step_lock(&step_mu);
    result.steps = steps;
    result.step_seconds = step_seconds;
    result.step_tokens = step_tokens;
  }
  const int block = (*engine)->config().block_size;
  result.peak_waste = result.stats.peak_kv_used == 0
                          ? 0
                          : double(result.stats.peak_kv_waste_slots) /
                                (double(result.stats.peak_kv_used) * block);
  return result;
}

void Print(const char* name, const RunResult& r, int n) {
  const engine::EngineStats& s = r.stats;
  std::fprintf(stderr,
               "%s: %lld steps, %.2f ms per step, %.1f tokens per step, %.0f%% "
               "of the time in steps\n",
               name, static_cast<long long>(r.steps),
               1e3 * r.step_seconds / r.steps, double(r.step_tokens) / r.steps,
               100 * r.step_seconds / r.seconds);
  std::printf(
      "| %s | %.2f | %.0f | %.2f s | %d of %d (%.0f%%) | %.1f%% | %lld | "
      "%.0f%% | %lld |\n",
      name, n / r.seconds, r.output_tokens / r.seconds, r.last_first_token_s,
      s.peak_kv_used, s.kv_total, 100.0 * s.peak_kv_used / s.kv_total,
      100 * r.peak_waste, static_cast<long long>(s.prompt_tokens_computed),
      s.prefix_queries ? 100.0 * s.prefix_hits / s.prefix_queries : 0.0,
      static_cast<long long>(s.preemptions));
}

// Plain against speculative decoding, per workload and concurrency.
int CompareSpeculative() {
  auto speculative = scheduler::ParseSpeculativeConfig(
      "ngram", absl::GetFlag(FLAGS_spec_tokens),
      absl::GetFlag(FLAGS_spec_ngram));
  if (!speculative.ok()) {
    std::fprintf(stderr, "%s\n", speculative.status().ToString().c_str());
    return 1;
  }
  const int output_tokens = absl::GetFlag(FLAGS_output_tokens);
  std::printf(
      "greedy, ignore_eos, %d new tokens per request; speculative: ngram, "
      "spec_tokens %d, spec_ngram %d\n\n",
      output_tokens, speculative->num_tokens, speculative->ngram);
  std::printf(
      "| workload | concurrent | plain tokens/s | speculative tokens/s | "
      "speed-up | CPU-time speed-up | acceptance | tokens per decode step | "
      "ms per step (plain / spec) |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const std::pair<Prompts, const char*> workloads[] = {
      {Prompts::kStory, "story openings (little to copy)"},
      {Prompts::kPassages, "passages said three times"},
      {Prompts::kRepeatedRandom, "24 random tokens said four times"},
  };
  for (const auto& [prompts, name] : workloads) {
    for (int n : {1, absl::GetFlag(FLAGS_requests)}) {
      // The best of a few alternating runs: a shared machine's noise only
      // ever slows a run down.
      RunResult plain, spec;
      double plain_cpu = 0, spec_cpu = 0;
      for (int rep = 0; rep < absl::GetFlag(FLAGS_spec_repeats); ++rep) {
        const RunResult p = RunWorkload(prompts, output_tokens, true, n);
        const RunResult q =
            RunWorkload(prompts, output_tokens, true, n, *speculative);
        if (rep == 0 || p.seconds < plain.seconds) plain = p;
        if (rep == 0 || q.seconds < spec.seconds) spec = q;
        plain_cpu =
            rep == 0 ? p.cpu_seconds : std::min(plain_cpu, p.cpu_seconds);
        spec_cpu = rep == 0 ? q.cpu_seconds : std::min(spec_cpu, q.cpu_seconds);
      }
      const engine::EngineStats& s = spec.stats;
      const double plain_rate = plain.output_tokens / plain.seconds;
      const double spec_rate = spec.output_tokens / spec.seconds;
      std::printf(
          "| %s | %d | %.0f | %.0f | %.2fx | %.2fx | %.0f%% | %.2f | %.2f / "
          "%.2f |\n",
          name, n, plain_rate, spec_rate, spec_rate / plain_rate,
          plain_cpu / spec_cpu,
          s.spec_proposed_tokens
              ? 100.0 * s.spec_accepted_tokens / s.spec_proposed_tokens
              : 0.0,
          s.decoding_sequence_steps
              ? double(s.decode_tokens_emitted) / s.decoding_sequence_steps
              : 0.0,
          1e3 * plain.step_seconds / plain.steps,
          1e3 * spec.step_seconds / spec.steps);
      std::fflush(stdout);
    }
  }
  return 0;
}

int Main() {
  if (absl::GetFlag(FLAGS_speculative)) return CompareSpeculative();
  const int n = absl::GetFlag(FLAGS_requests);
  std::printf(
      "%d requests at once, prompts of 16-64 tokens, %d new tokens each, "
      "greedy, "
      "at most %d running\n\n",
      n, absl::GetFlag(FLAGS_output_tokens), absl::GetFlag(FLAGS_max_running));
  std::printf(
      "| workload | requests/s | output tokens/s | all first tokens by | peak "
      "KV blocks | "
      "KV waste at peak | prompt tokens computed | prefix hit rate | "
      "preemptions |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const int output_tokens = absl::GetFlag(FLAGS_output_tokens);
  Print("distinct prompts", RunWorkload(Prompts::kDistinct, output_tokens), n);
  Print("shared 48-token prefix",
        RunWorkload(Prompts::kSharedPrefix, output_tokens), n);

  // Prefill alone: one output token per request, so the time is the time
  // to process every prompt.
  std::printf("\nprefill only (max_tokens 1), shared 48-token prefix:\n");
  std::printf(
      "| prefix cache | prefill time | prompt tokens computed "
      "|\n|---|---:|---:|\n");
  auto prefill = [&](bool cache) {
    return RunWorkload(Prompts::kSharedPrefix, 1, cache);
  };
  const RunResult with_cache = prefill(true);
  const RunResult without = prefill(false);
  std::printf("| on | %.2f s | %lld |\n| off | %.2f s | %lld |\n",
              with_cache.seconds,
              static_cast<long long>(with_cache.stats.prompt_tokens_computed),
              without.seconds,
              static_cast<long long>(without.stats.prompt_tokens_computed));
  std::printf("prefix-cache speed-up on prefill time: %.2fx\n",
              without.seconds / with_cache.seconds);

  // The raw forward pass at the same concurrency, context 128.
  const int batch = absl::GetFlag(FLAGS_max_running);
  auto config = model::LoadModelConfig(absl::GetFlag(FLAGS_model));
  const int per_seq =
      (config->max_position_embeddings + ForwardWorkload::kBlockSize - 1) /
      ForwardWorkload::kBlockSize;
  auto runner = worker::ModelRunner::Load(
      absl::GetFlag(FLAGS_model), ForwardWorkload::kBlockSize, per_seq * batch);
  ForwardWorkload raw(**runner);
  double best = 0;
  for (int i = 0; i < 3; ++i) best = std::max(best, raw.Decode(batch, 128, 32));
  std::printf(
      "\nraw forward pass, %d sequences decoding at context 128: %.0f "
      "tokens/s\n",
      batch, best);
  return 0;
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::bench::Main();
}
