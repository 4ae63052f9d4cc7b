// A model's chat template: turns a conversation (OpenAI-style messages)
// into the prompt text the model was trained on, with the template Hugging
// Face ships beside the tokenizer (tokenizer_config.json "chat_template",
// or chat_template.jinja). Rendering matches @huggingface/jinja, the
// reference JavaScript renderer of these templates, byte for byte; the
// engine is in jinja/.
//
//   ASSIGN_OR_RETURN(std::optional<ChatTemplate> t,
//                    ChatTemplate::LoadFromModelDir(dir));
//   ASSIGN_OR_RETURN(std::string prompt, t->Render(messages, true));
//   // Tokenize `prompt` without adding BOS when t->StartsWithBos(prompt).
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_CHAT_TEMPLATE_H_

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/chat_template/jinja/template.h"
#include "nlohmann/json.hpp"

namespace hydra::model::chat_template {

// The tokenizer's special tokens as the template sees them. An empty one
// is absent (the variable stays undefined, as Hugging Face leaves out a
// token that is null, e.g. Qwen's bos_token).
// (Each has an initializer so that `SpecialTokens{.eos_token = "</s>"}`
// may leave the others out without a warning.)
struct SpecialTokens {
  std::string bos_token = "";
  std::string eos_token = "";
  std::string pad_token = "";
  std::string unk_token = "";
};

class ChatTemplate {
 public:
  // Parses and checks `source`; refuses, naming the line and the
  // construct, what the renderer cannot carry out (an unsupported tag
  // such as include, an unknown filter or test, a syntax error).
  static absl::StatusOr<ChatTemplate> Parse(std::string_view source,
                                            SpecialTokens tokens);

  // From a model folder: tokenizer_config.json's "chat_template" (a
  // string, or a list of {name, template} of which "default" is taken),
  // else chat_template.jinja, else chat_template.json's "chat_template"
  // (where multimodal processors keep it). The special tokens come from
  // tokenizer_config.json (strings, or AddedToken objects {"content"}),
  // else special_tokens_map.json. nullopt when the folder has no template.
  static absl::StatusOr<std::optional<ChatTemplate>> LoadFromModelDir(
      const std::filesystem::path& dir);

  // --chat_template=FILE: a .json file is read as a tokenizer_config.json
  // (its "chat_template", and its special tokens where it has them, else
  // `tokens`); any other file's whole text is the template.
  static absl::StatusOr<ChatTemplate> LoadFromFile(
      const std::filesystem::path& file, SpecialTokens tokens);

  // `messages`: a JSON array of {"role", "content", ...} where content is
  // a string or an array of parts such as {"type": "text", "text": ...};
  // it reaches the template as it is. The template also sees bos_token,
  // eos_token, pad_token, unk_token (those present), add_generation_prompt,
  // the globals raise_exception, strftime_now, range and namespace, and
  // `extra_context`'s entries (tools, enable_thinking, date_string, ...);
  // anything else, `tools` included, is undefined. Fails when the
  // template fails; see RaisedMessage for its own raise_exception().
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& messages,
                                     bool add_generation_prompt) const;
  absl::StatusOr<std::string> Render(
      const nlohmann::ordered_json& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra_context) const;

  const SpecialTokens& special_tokens() const { return tokens_; }
  const std::string& source() const { return source_; }

  // Whether `rendered` already begins with the BOS token's text: a
  // tokenizer that adds BOS itself must then not add a second one.
  bool StartsWithBos(std::string_view rendered) const;

  // The message a template gave raise_exception() (e.g. "Conversation
  // roles must alternate user/assistant/user/assistant/..."), when that
  // is what `status` reports; nullopt for any other failure.
  static std::optional<std::string> RaisedMessage(const absl::Status& status);

 private:
  ChatTemplate(jinja::Template engine, std::string source, SpecialTokens tokens)
      : engine_(std::move(engine)),
        source_(std::move(source)),
        tokens_(std::move(tokens)) {}

  jinja::Template engine_;
  std::string source_;
  SpecialTokens tokens_;
};

}  // namespace hydra::model::chat_template

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
