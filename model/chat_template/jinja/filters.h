// The filters (`x | name` and `x | name(args)`), as @huggingface/jinja
// applies them: each one by the operand's type, and the bare form and the
// call form are separate (`|trim` works, `|trim()` fails, as there).
// Besides the reference's own, a few of Jinja's that it lacks are here
// with Jinja's meaning: count, d, e/escape, wordcount, select, reject.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_FILTERS_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_FILTERS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template::jinja {

bool IsKnownFilter(std::string_view name);

// `args` is null for the bare form (`x|trim`).
absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& operand,
                                  const CallArgs* args);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_FILTERS_H_
