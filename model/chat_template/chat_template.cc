#include "model/chat_template/chat_template.h"

#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template {
namespace {

using ::nlohmann::ordered_json;

absl::StatusOr<ordered_json> ReadJson(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ordered_json json =
      ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a JSON object"));
  }
  return json;
}

// A special token as tokenizer configs write it: a string, null, or an
// AddedToken object {"content": "<s>", "lstrip": false, ...}.
absl::StatusOr<std::optional<std::string>> TokenText(
    const ordered_json& config, std::string_view key,
    const std::filesystem::path& path) {
  const auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") &&
      (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path.string(), ": \"", std::string(key),
                   "\" is neither a string nor {\"content\": ...}"));
}

// Fills the tokens `config` names; leaves the others as they are.
absl::Status ReadTokens(const ordered_json& config,
                        const std::filesystem::path& path,
                        SpecialTokens& tokens) {
  const std::pair<std::string_view, std::string*> fields[] = {
      {"bos_token", &tokens.bos_token},
      {"eos_token", &tokens.eos_token},
      {"pad_token", &tokens.pad_token},
      {"unk_token", &tokens.unk_token},
  };
  for (const auto& [key, field] : fields) {
    ASSIGN_OR_RETURN(std::optional<std::string> text,
                     TokenText(config, key, path));
    if (text) *field = *std::move(text);
  }
  return absl::OkStatus();
}

// tokenizer_config.json's "chat_template": nullopt when absent.
absl::StatusOr<std::optional<std::string>> TemplateText(
    const ordered_json& config, const std::filesystem::path& path) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::vector<std::string> names;
    for (const ordered_json& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") ||
          !entry["name"].is_string() || !entry.contains("template") ||
          !entry["template"].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(
            path.string(),
            ": \"chat_template\" entries must be {\"name\", \"template\"}"));
      }
      if (entry["name"] == "default")
        return entry["template"].get<std::string>();
      names.push_back(entry["name"].get<std::string>());
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": no \"default\" among the chat templates (",
        absl::StrJoin(names, ", "), ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path.string(), ": \"chat_template\" is neither a string nor a list"));
}

absl::Status InFile(const std::filesystem::path& path,
                    const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(path.string(), ": ", status.message()));
}

bool Exists(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source,
                                                 SpecialTokens tokens) {
  ASSIGN_OR_RETURN(jinja::Template engine, jinja::Template::Parse(source));
  return ChatTemplate(std::move(engine), std::string(source),
                      std::move(tokens));
}

absl::StatusOr<std::optional<ChatTemplate>> ChatTemplate::LoadFromModelDir(
    const std::filesystem::path& dir) {
  SpecialTokens tokens;
  std::optional<std::string> source;
  std::filesystem::path source_path;
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  const std::filesystem::path map_path = dir / "special_tokens_map.json";
  if (Exists(map_path)) {
    ASSIGN_OR_RETURN(ordered_json map, ReadJson(map_path));
    RETURN_IF_ERROR(ReadTokens(map, map_path, tokens));
  }
  if (Exists(config_path)) {
    ASSIGN_OR_RETURN(ordered_json config, ReadJson(config_path));
    RETURN_IF_ERROR(ReadTokens(config, config_path, tokens));
    ASSIGN_OR_RETURN(source, TemplateText(config, config_path));
    source_path = config_path;
  }
  if (!source && Exists(dir / "chat_template.jinja")) {
    source_path = dir / "chat_template.jinja";
    ASSIGN_OR_RETURN(source, ReadFile(source_path));
  }
  // Multimodal models' processors keep it in chat_template.json.
  if (!source && Exists(dir / "chat_template.json")) {
    source_path = dir / "chat_template.json";
    ASSIGN_OR_RETURN(ordered_json processor, ReadJson(source_path));
    ASSIGN_OR_RETURN(source, TemplateText(processor, source_path));
  }
  if (!source) return std::nullopt;
  absl::StatusOr<ChatTemplate> parsed = Parse(*source, std::move(tokens));
  if (!parsed.ok()) return InFile(source_path, parsed.status());
  return std::optional<ChatTemplate>(*std::move(parsed));
}

absl::StatusOr<ChatTemplate> ChatTemplate::LoadFromFile(
    const std::filesystem::path& file, SpecialTokens tokens) {
  std::string source;
  if (file.extension() == ".json") {
    ASSIGN_OR_RETURN(ordered_json config, ReadJson(file));
    RETURN_IF_ERROR(ReadTokens(config, file, tokens));
    ASSIGN_OR_RETURN(std::optional<std::string> text,
                     TemplateText(config, file));
    if (!text) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.string(), ": no \"chat_template\""));
    }
    source = *std::move(text);
  } else {
    ASSIGN_OR_RETURN(source, ReadFile(file));
  }
  absl::StatusOr<ChatTemplate> parsed = Parse(source, std::move(tokens));
  if (!parsed.ok()) return InFile(file, parsed.status());
  return parsed;
}

absl::StatusOr<std::string> ChatTemplate::Render(
    const ordered_json& messages, bool add_generation_prompt) const {
  return Render(messages, add_generation_prompt, ordered_json::object());
}

absl::StatusOr<std::string> ChatTemplate::Render(
    const ordered_json& messages, bool add_generation_prompt,
    const ordered_json& extra_context) const {
  if (!messages.is_array()) {
    return absl::InvalidArgumentError(
        "chat template: messages must be a JSON array");
  }
  if (!extra_context.is_object()) {
    return absl::InvalidArgumentError(
        "chat template: the extra context must be a JSON object");
  }
  std::vector<std::pair<std::string, jinja::Value>> variables;
  variables.emplace_back("messages", jinja::FromJson(messages));
  const std::pair<const char*, const std::string*> tokens[] = {
      {"bos_token", &tokens_.bos_token},
      {"eos_token", &tokens_.eos_token},
      {"pad_token", &tokens_.pad_token},
      {"unk_token", &tokens_.unk_token},
  };
  for (const auto& [name, text] : tokens) {
    if (!text->empty())
      variables.emplace_back(name, jinja::Value::String(*text));
  }
  variables.emplace_back("add_generation_prompt",
                         jinja::Value::Bool(add_generation_prompt));
  for (const auto& [key, value] : extra_context.items()) {
    for (const auto& [name, _] : variables) {
      if (name == key) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chat template: the extra context sets \"", key, "\" again"));
      }
    }
    variables.emplace_back(key, jinja::FromJson(value));
  }
  return engine_.Render(variables);
}

bool ChatTemplate::StartsWithBos(std::string_view rendered) const {
  return !tokens_.bos_token.empty() && rendered.starts_with(tokens_.bos_token);
}

std::optional<std::string> ChatTemplate::RaisedMessage(
    const absl::Status& status) {
  const std::string_view message = jinja::Sv(status.message());
  if (status.ok() || !message.starts_with(jinja::kRaisedPrefix))
    return std::nullopt;
  return std::string(message.substr(jinja::kRaisedPrefix.size()));
}

}  // namespace hydra::model::chat_template
