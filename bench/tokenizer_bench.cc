// Tokenizer throughput: encode and decode a long English text (the golden
// prompts' style of prose, repeated) with each tokenizer given, best of N.
// Usage: hydra_tokenizer_bench models/stories15M/tokenizer.model
//            models/tokenizers/qwen3/tokenizer.json ...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "model/tokenizer.h"

ABSL_FLAG(int, repeats, 5, "Timed runs per figure; the best is reported");
ABSL_FLAG(int, kib, 256, "Size of the text, KiB");

namespace {

constexpr char kParagraph[] =
    "Once upon a time, there was a little girl named Lily. She loved to play "
    "outside in the sunshine. One day, she saw a big, red ball in the park "
    "and said: \"Can I play with it?\" Her mom smiled: 'Of course you can!' "
    "They played until 5:30 pm, then walked 1.2 km home for dinner.\n\n";

template <typename F>
double BestSeconds(int repeats, F&& run) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - start)
                              .count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<char*> files = absl::ParseCommandLine(argc, argv);
  std::string text;
  while (text.size() < size_t(absl::GetFlag(FLAGS_kib)) * 1024)
    text += kParagraph;
  const int repeats = absl::GetFlag(FLAGS_repeats);
  std::printf(
      "| tokenizer | tokens | encode MB/s | encode Mtok/s | "
      "decode MB/s |\n|---|---:|---:|---:|---:|\n");
  for (size_t i = 1; i < files.size(); ++i) {
    auto tokenizer = hydra::model::Tokenizer::Load(files[i]);
    if (!tokenizer.ok()) {
      std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
      return 1;
    }
    std::vector<int> ids;
    const double encode = BestSeconds(
        repeats, [&] { ids = *(*tokenizer)->Encode(text, /*add_bos=*/false); });
    std::string back;
    const double decode =
        BestSeconds(repeats, [&] { back = *(*tokenizer)->Decode(ids); });
    std::printf("| %s | %zu | %.1f | %.2f | %.1f |\n", files[i], ids.size(),
                text.size() / encode / 1e6, ids.size() / encode / 1e6,
                back.size() / decode / 1e6);
  }
  return 0;
}
