// Debian's abseil is built with its own string_view type, distinct from
// std::string_view, so absl::StrCat and friends do not take a
// std::string_view. These convert at that boundary.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_ABSL_COMPAT_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_ABSL_COMPAT_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace hydra::model::chat_template::jinja {

inline absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view Sv(absl::string_view s) { return {s.data(), s.size()}; }

// absl::StrCat for std::string_view pieces (and strings, integers).
inline void AppendPiece(std::string& out, std::string_view s) { out.append(s); }
inline void AppendPiece(std::string& out, absl::string_view s) {
  out.append(s.data(), s.size());
}
inline void AppendPiece(std::string& out, const char* s) { out.append(s); }
inline void AppendPiece(std::string& out, const std::string& s) {
  out.append(s);
}
template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
void AppendPiece(std::string& out, T v) {
  out.append(std::to_string(v));
}
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(out, pieces), ...);
  return out;
}

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_ABSL_COMPAT_H_
