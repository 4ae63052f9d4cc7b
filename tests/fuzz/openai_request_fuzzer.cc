// OpenAI request bodies from untrusted bytes, as the HTTP front end gets
// them (server/http/openai_request): each body is parsed as all four
// endpoints would parse it; completions and chats (rendered with a real
// chat template, Qwen3's) go on through ValidateRequest against a small
// model. Nothing may throw or crash; what passes must be safe for the
// engine to run (request_checks.h).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "model/chat_template/chat_template.h"
#include "server/http/openai_request.h"
#include "server/request_validation.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/request_checks.h"

namespace hydra::fuzz {
namespace {

const model::chat_template::ChatTemplate& Qwen3Template() {
  static const auto* t = [] {
    auto loaded = model::chat_template::ChatTemplate::LoadFromFile(
        std::filesystem::path(HYDRA_TEST_DATA_DIR) / "chat_templates" /
            "qwen3.jinja",
        model::chat_template::SpecialTokens{.eos_token = "<|im_end|>"});
    if (!loaded.ok()) Fatal(loaded.status().ToString());
    return new model::chat_template::ChatTemplate(*std::move(loaded));
  }();
  return *t;
}

void Validate(server::RequestFields fields, const SmallModel& model) {
  CheckValidated(
      server::ValidateRequest(fields, server::kGrpcFieldNames, model.config,
                              *model.tokenizer, model.max_model_len),
      model);
}

}  // namespace
}  // namespace hydra::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  namespace http = server::http;
  const fuzz::SmallModel& model = fuzz::LoadSmallModel();
  auto body = http::ParseJsonObject(
      std::string(reinterpret_cast<const char*>(data), size));
  if (!body.ok()) return 0;
  (void)http::ParseTokenizeRequest(*body);
  (void)http::ParseDetokenizeRequest(*body);
  if (auto completion = http::ParseCompletionRequest(*body); completion.ok()) {
    fuzz::Validate(completion->fields, model);
  }
  auto chat = http::ParseChatRequest(*body);
  if (!chat.ok()) return 0;
  auto prompt =
      fuzz::Qwen3Template().Render(chat->messages, chat->add_generation_prompt);
  if (!prompt.ok()) return 0;
  chat->fields.prompt = server::PromptText{.text = *prompt, .add_bos = false};
  fuzz::Validate(chat->fields, model);
  return 0;
}
