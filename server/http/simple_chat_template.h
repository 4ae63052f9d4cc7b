// TEMPORARY, until the chat-template branch's renderer
// (hydra::model::chat_template::ChatTemplate) lands: renders the small
// subset of Jinja that simple chat templates use, so that --chat_template
// works and the chat endpoint can be tested. Supported: text, {# comments #},
// {{ bos_token }}, {{ eos_token }}, {{ message['role'] }} /
// {{ message.content }} (role or content), {% for message in messages %} ...
// {% endfor %}, {% if add_generation_prompt %} ... {% else %} ... {% endif %}
// and "-" whitespace control. Anything else is refused when loading.
#ifndef HYDRA_SERVER_HTTP_SIMPLE_CHAT_TEMPLATE_H_
#define HYDRA_SERVER_HTTP_SIMPLE_CHAT_TEMPLATE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace hydra::server::http {

class SimpleChatTemplate {
 public:
  static absl::StatusOr<SimpleChatTemplate> Parse(const std::string& source,
                                                  std::string bos_token,
                                                  std::string eos_token);
  static absl::StatusOr<SimpleChatTemplate> LoadFromFile(
      const std::string& path, std::string bos_token, std::string eos_token);

  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& messages,
                                     bool add_generation_prompt) const;

  struct Node;

 private:
  SimpleChatTemplate() = default;
  std::shared_ptr<const Node> root_;
  std::string bos_token_;
  std::string eos_token_;
};

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_SIMPLE_CHAT_TEMPLATE_H_
