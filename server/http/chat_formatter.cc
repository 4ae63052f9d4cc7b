#include "server/http/chat_formatter.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/chat_template/chat_template.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;
using model::chat_template::ChatTemplate;
using model::chat_template::SpecialTokens;

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

// The special tokens a --chat_template file renders with: the model
// folder's, else Llama 2's (<s>, </s>).
SpecialTokens ModelSpecialTokens(const std::string& model_dir) {
  Json config = Json::object();
  const std::filesystem::path path =
      std::filesystem::path(model_dir) / "tokenizer_config.json";
  if (std::ifstream in(path); in) {
    Json parsed = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) config = std::move(parsed);
  }
  SpecialTokens tokens;
  tokens.bos_token = SpecialToken(config, "bos_token", "<s>");
  tokens.eos_token = SpecialToken(config, "eos_token", "</s>");
  return tokens;
}

ChatSetup Setup(ChatTemplate t, std::string note) {
  ChatSetup setup;
  setup.bos_text = t.special_tokens().bos_token;
  auto shared = std::make_shared<const ChatTemplate>(std::move(t));
  setup.format =
      [shared](const Json& messages,
               bool add_generation_prompt) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> text =
        shared->Render(messages, add_generation_prompt);
    if (!text.ok()) {
      // The template's own raise_exception() says what is wrong with the
      // conversation (e.g. roles that do not alternate).
      if (auto raised = ChatTemplate::RaisedMessage(text.status())) {
        return absl::InvalidArgumentError(*raised);
      }
    }
    return text;
  };
  setup.note = std::move(note);
  return setup;
}

}  // namespace

absl::StatusOr<ChatSetup> LoadChatFormatter(const std::string& template_file,
                                            const std::string& model_dir) {
  if (!template_file.empty()) {
    absl::StatusOr<ChatTemplate> t = ChatTemplate::LoadFromFile(
        template_file, ModelSpecialTokens(model_dir));
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--chat_template: ", t.status().message()));
    }
    return Setup(*std::move(t),
                 absl::StrCat("chat template from ", template_file));
  }
  absl::StatusOr<std::optional<ChatTemplate>> t =
      ChatTemplate::LoadFromModelDir(model_dir);
  if (!t.ok()) {
    ChatSetup none;
    none.note = absl::StrCat("the model's chat template cannot be used (",
                             t.status().message(),
                             "): chat completions off; see --chat_template");
    return none;
  }
  if (!t->has_value()) {
    ChatSetup none;
    none.note = "no chat template: chat completions off (--chat_template)";
    return none;
  }
  return Setup(**std::move(t), "chat template from the model folder");
}

}  // namespace hydra::server::http
