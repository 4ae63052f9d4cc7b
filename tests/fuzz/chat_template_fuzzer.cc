// Chat templates from untrusted bytes (a model folder's
// tokenizer_config.json is not ours): what ChatTemplate::Parse accepts is
// rendered for a few conversations. A template may fail, with a Status, but
// never crash, read out of bounds or hang past the renderer's step bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/chat_template/chat_template.h"
#include "tests/fuzz/fuzz_support.h"

namespace hydra::fuzz {
namespace {

const nlohmann::ordered_json& Conversations() {
  static const auto* conversations =
      new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"([
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "Be brief."},
         {"role": "user", "content": "Hi \u00e9\u65e5\ud83d\ude00"},
         {"role": "assistant", "content": "Hello."},
         {"role": "user", "content": [{"type": "text", "text": "Bye"}]}],
        []
      ])"));
  return *conversations;
}

}  // namespace
}  // namespace hydra::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  namespace ct = model::chat_template;
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto parsed = ct::ChatTemplate::Parse(
      source, ct::SpecialTokens{.bos_token = "<s>", .eos_token = "</s>"});
  if (!parsed.ok()) return 0;
  bool add_generation_prompt = false;
  for (const auto& messages : fuzz::Conversations()) {
    auto rendered = parsed->Render(messages, add_generation_prompt);
    add_generation_prompt = !add_generation_prompt;
    if (rendered.ok()) (void)parsed->StartsWithBos(*rendered);
  }
  return 0;
}
