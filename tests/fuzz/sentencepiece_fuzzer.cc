// A SentencePiece tokenizer.model from untrusted bytes, loaded the way a
// model folder's is: Tokenizer::Load through the plugin
// (libhydra_sentencepiece.so). Whatever loads must encode, decode every
// piece and stream without crashing, with ids inside its vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  auto tokenizer =
      model::Tokenizer::Load(fuzz::WriteScratch("tokenizer.model", data, size));
  if (!tokenizer.ok()) {
    // A plugin that cannot be found is a broken set-up, not an input's fault.
    HYDRA_FUZZ_CHECK(
        tokenizer.status().code() == absl::StatusCode::kInvalidArgument,
        tokenizer.status());
    return 0;
  }
  const model::Tokenizer& t = **tokenizer;
  const int vocab = t.vocab_size();
  HYDRA_FUZZ_CHECK(t.bos_id() < vocab && t.eos_id() < vocab);
  for (std::string_view text :
       {std::string_view("Once upon a time, 42 cats."),
        std::string_view("  \xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80\n\t"),
        std::string_view("")}) {
    auto ids = t.Encode(text);
    if (!ids.ok()) continue;
    for (int id : *ids) HYDRA_FUZZ_CHECK(id >= 0 && id < vocab);
    (void)t.Decode(*ids);
    model::IncrementalDetokenizer stream(t, {});
    for (int id : *ids) (void)stream.Push(id);
    (void)stream.Flush();
  }
  return 0;
}
