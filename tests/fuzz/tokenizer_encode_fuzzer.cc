// Text from untrusted bytes through real tokenizers: Llama 3's tokenizer.json
// (byte-level BPE, hydra's own code) and stories15M's tokenizer.model
// (SentencePiece, through the plugin). Ids stay inside the vocabulary;
// byte-level BPE without a normalizer gives valid UTF-8 back unchanged; the
// streaming detokenizer's deltas join to the whole decode.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "server/request_validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace hydra::fuzz {
namespace {

std::unique_ptr<model::Tokenizer> LoadOrDie(const std::filesystem::path& file) {
  auto tokenizer = model::Tokenizer::Load(file);
  if (!tokenizer.ok()) Fatal(tokenizer.status().ToString());
  return *std::move(tokenizer);
}

const model::Tokenizer& Llama3() {
  static const auto* t = LoadOrDie(std::filesystem::path(HYDRA_TOKENIZERS_DIR) /
                                   "llama3" / "tokenizer.json")
                             .release();
  return *t;
}

const model::Tokenizer& Stories15M() {
  static const auto* t =
      LoadOrDie(std::filesystem::path(HYDRA_TEST_MODEL_DIR) / "tokenizer.model")
          .release();
  return *t;
}

// Encodes, checks the ids, decodes; returns the ids.
std::vector<int> RoundTrip(const model::Tokenizer& t, std::string_view text,
                           bool exact) {
  auto ids = t.Encode(text, /*add_bos=*/false);
  HYDRA_FUZZ_CHECK(ids.ok(), ids.status());
  for (int id : *ids) HYDRA_FUZZ_CHECK(id >= 0 && id < t.vocab_size());
  auto decoded = t.Decode(*ids);
  HYDRA_FUZZ_CHECK(decoded.ok(), decoded.status());
  if (exact) HYDRA_FUZZ_CHECK(*decoded == text, *decoded);
  return *std::move(ids);
}

void Stream(const model::Tokenizer& t, const std::vector<int>& ids) {
  model::IncrementalDetokenizer stream(t, {});
  std::string joined;
  for (int id : ids) {
    auto delta = stream.Push(id);
    HYDRA_FUZZ_CHECK(delta.ok(), delta.status());
    joined += *delta;
  }
  auto rest = stream.Flush();
  HYDRA_FUZZ_CHECK(rest.ok(), rest.status());
  joined += *rest;
  HYDRA_FUZZ_CHECK(joined == *t.Decode(ids), joined);
}

}  // namespace
}  // namespace hydra::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hydra::fuzz::Llama3();  // loaded before the clock starts
  hydra::fuzz::Stories15M();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Request validation lets only valid UTF-8 text reach Encode.
  const bool utf8 = hydra::server::IsValidUtf8(text);
  Stream(Llama3(), RoundTrip(Llama3(), text, /*exact=*/utf8));
  if (utf8) RoundTrip(Stories15M(), text, /*exact=*/false);
  return 0;
}
