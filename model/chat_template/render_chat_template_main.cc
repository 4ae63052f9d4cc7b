// hydra_render_chat_template: prints the prompt a chat template makes of a
// conversation, to try a template by hand.
//
//   hydra_render_chat_template (--model_dir=DIR | --template=FILE
//       [--bos_token=S] [--eos_token=S]) --messages=FILE.json
//       [--add_generation_prompt] [--context=FILE.json]
//
// FILE.json holds the messages array (or {"messages": [...]}); --context
// holds extra variables ({"tools": [...], ...}).
#include <iostream>
#include <string>
#include <string_view>

#include "common/read_file.h"
#include "model/chat_template/chat_template.h"

namespace {

using ::hydra::model::chat_template::ChatTemplate;
using ::hydra::model::chat_template::SpecialTokens;
using ::nlohmann::ordered_json;

int Fail(std::string_view message) {
  std::cerr << "hydra_render_chat_template: " << message << "\n";
  return 1;
}

bool ReadJson(const std::string& path, ordered_json& out) {
  auto text = hydra::ReadFile(path);
  if (!text.ok()) {
    std::cerr << text.status().message() << "\n";
    return false;
  }
  out = ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    std::cerr << path << ": not valid JSON\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, template_file, messages_file, context_file;
  SpecialTokens tokens;
  bool add_generation_prompt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&](std::string_view flag, std::string& out) {
      if (arg.substr(0, flag.size()) != flag) return false;
      out = std::string(arg.substr(flag.size()));
      return true;
    };
    if (value("--model_dir=", model_dir) ||
        value("--template=", template_file) ||
        value("--messages=", messages_file) ||
        value("--context=", context_file) ||
        value("--bos_token=", tokens.bos_token) ||
        value("--eos_token=", tokens.eos_token)) {
      continue;
    }
    if (arg == "--add_generation_prompt") {
      add_generation_prompt = true;
      continue;
    }
    return Fail(std::string("unknown argument ") + std::string(arg));
  }
  if (messages_file.empty() || model_dir.empty() == template_file.empty()) {
    return Fail("needs --messages and one of --model_dir, --template");
  }
  std::optional<ChatTemplate> chat_template;
  if (!model_dir.empty()) {
    auto loaded = ChatTemplate::LoadFromModelDir(model_dir);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    if (!*loaded) return Fail(model_dir + " has no chat template");
    chat_template = **std::move(loaded);
  } else {
    auto loaded = ChatTemplate::LoadFromFile(template_file, tokens);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    chat_template = *std::move(loaded);
  }
  ordered_json messages, context = ordered_json::object();
  if (!ReadJson(messages_file, messages)) return 1;
  if (messages.is_object() && messages.contains("messages"))
    messages = messages["messages"];
  if (!context_file.empty() && !ReadJson(context_file, context)) return 1;
  auto rendered =
      chat_template->Render(messages, add_generation_prompt, context);
  if (!rendered.ok()) return Fail(std::string(rendered.status().message()));
  std::cout << *rendered;
  return 0;
}
