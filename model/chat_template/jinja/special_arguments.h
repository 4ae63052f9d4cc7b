// Which of a macro's (or call block's) special arguments its body reads:
// `kwargs` (the keyword arguments no parameter took) and `varargs` (the
// positional ones beyond the parameters) exist only then, and a call that
// passes extra arguments to a macro without them fails, as in Jinja.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_SPECIAL_ARGUMENTS_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_SPECIAL_ARGUMENTS_H_

#include <vector>

#include "model/chat_template/jinja/ast.h"

namespace hydra::model::chat_template::jinja {

SpecialArguments FindSpecialArguments(const std::vector<NodePtr>& params,
                                      const Body& body);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_SPECIAL_ARGUMENTS_H_
