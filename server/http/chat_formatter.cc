#include "server/http/chat_formatter.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http/simple_chat_template.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;

// tokenizer_config.json's special token `name`: a string or {content}.
std::string SpecialToken(const Json& config, const char* name,
                         const char* fallback) {
  const auto it = config.find(name);
  if (it == config.end()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") &&
      (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return fallback;
}

ChatFormatter Formatter(SimpleChatTemplate t) {
  auto shared = std::make_shared<const SimpleChatTemplate>(std::move(t));
  return [shared](const Json& messages, bool add_generation_prompt) {
    return shared->Render(messages, add_generation_prompt);
  };
}

}  // namespace

absl::StatusOr<ChatSetup> LoadChatFormatter(const std::string& template_file,
                                            const std::string& model_dir) {
  Json config = Json::object();
  const std::filesystem::path config_path =
      std::filesystem::path(model_dir) / "tokenizer_config.json";
  if (std::ifstream in(config_path); in) {
    Json parsed = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) config = std::move(parsed);
  }
  ChatSetup setup;
  setup.bos_text = SpecialToken(config, "bos_token", "<s>");
  const std::string eos = SpecialToken(config, "eos_token", "</s>");
  if (!template_file.empty()) {
    absl::StatusOr<SimpleChatTemplate> t =
        SimpleChatTemplate::LoadFromFile(template_file, setup.bos_text, eos);
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--chat_template: ", t.status().message()));
    }
    setup.format = Formatter(*std::move(t));
    setup.note = absl::StrCat("chat template from ", template_file);
    return setup;
  }
  const auto it = config.find("chat_template");
  if (it == config.end() || !it->is_string()) {
    setup.note = "no chat template (chat completions off; --chat_template)";
    return setup;
  }
  absl::StatusOr<SimpleChatTemplate> t =
      SimpleChatTemplate::Parse(it->get<std::string>(), setup.bos_text, eos);
  if (!t.ok()) {
    setup.note = absl::StrCat("the model's chat template cannot be rendered (",
                              t.status().message(),
                              "): chat completions off; --chat_template");
    return setup;
  }
  setup.format = Formatter(*std::move(t));
  setup.note = "chat template from tokenizer_config.json";
  return setup;
}

}  // namespace hydra::server::http
