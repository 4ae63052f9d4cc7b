// tokenizer.json (and tokenizer_config.json) from untrusted bytes: the input
// is the tokenizer.json text, then optionally a NUL byte and the
// tokenizer_config.json text. What ByteLevelBpe::Parse accepts must encode
// and decode any text without reading out of bounds, and give ids inside
// its vocabulary.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "model/byte_level_bpe.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view config =
      nul == std::string_view::npos ? "" : input.substr(nul + 1);
  auto bpe = model::ByteLevelBpe::Parse(json, config, "tokenizer.json");
  if (!bpe.ok()) return 0;
  const model::ByteLevelBpe& t = **bpe;
  const int vocab = t.vocab_size();
  HYDRA_FUZZ_CHECK(vocab >= 256);
  HYDRA_FUZZ_CHECK(t.bos_id() >= -1 && t.bos_id() < vocab);
  HYDRA_FUZZ_CHECK(t.eos_id() >= -1 && t.eos_id() < vocab);
  // Text of every kind the pre-tokenizer regexes split differently, and the
  // input itself (added tokens, invalid UTF-8).
  for (std::string_view text :
       {std::string_view("Hello, world! It's 2024.\n\n  x"),
        std::string_view("\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80 \t\r\n"),
        std::string_view("\xFF\xC0\x80 a\xE2\x80"), input.substr(0, 256)}) {
    auto ids = t.Encode(text);
    if (!ids.ok()) continue;  // NFC may refuse invalid UTF-8
    for (int id : *ids) HYDRA_FUZZ_CHECK(id >= 0 && id < vocab);
    (void)t.Decode(*ids);
  }
  // Every id alone, padding rows (ids no token names) included.
  for (int id = 0; id < vocab && id < 1024; ++id) {
    const int one[] = {id};
    (void)t.Decode(one);
  }
  return 0;
}
