// A Jinja template in the dialect of Hugging Face chat templates, parsed
// once and rendered many times. Rendering follows @huggingface/jinja,
// the reference JavaScript renderer, byte for byte.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_TEMPLATE_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/chat_template/jinja/ast.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template::jinja {

class Template {
 public:
  // Fails, naming the line, on a syntax error or a construct the renderer
  // does not support.
  static absl::StatusOr<Template> Parse(std::string_view source);

  // Renders with `variables` defined (in order) beside the globals (true,
  // none, namespace, range, raise_exception, strftime_now, ...). Naming a
  // global again fails, as in the reference. raise_exception(msg) fails
  // with a message that starts with kRaisedPrefix and ends with msg.
  absl::StatusOr<std::string> Render(
      const std::vector<std::pair<std::string, Value>>& variables) const;

 private:
  explicit Template(std::shared_ptr<const Program> program)
      : program_(std::move(program)) {}

  // Shared: copies of a template are cheap and rendering never changes it.
  std::shared_ptr<const Program> program_;
};

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_TEMPLATE_H_
