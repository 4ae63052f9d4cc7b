// The chat formatter the HTTP front end renders chat prompts with
// (model/chat_template): from --chat_template=FILE, else from the model
// folder (tokenizer_config.json, chat_template.jinja or .json), else none
// (chat requests are refused with 400).
#ifndef HYDRA_SERVER_HTTP_CHAT_FORMATTER_H_
#define HYDRA_SERVER_HTTP_CHAT_FORMATTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/http/openai_api.h"

namespace hydra::server::http {

struct ChatSetup {
  ChatFormatter format;  // nullptr: none
  std::string bos_text;  // the BOS token's text, e.g. "<s>"
  std::string note;      // for the log: where the template came from
};

// `template_file` empty: look in `model_dir`. A file that cannot be read or
// parsed is an error; a model folder's template that cannot be rendered
// only leaves chat off (said in `note`).
absl::StatusOr<ChatSetup> LoadChatFormatter(const std::string& template_file,
                                            const std::string& model_dir);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_CHAT_FORMATTER_H_
