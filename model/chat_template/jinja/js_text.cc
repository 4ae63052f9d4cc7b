#include "model/chat_template/jinja/js_text.h"

#include <unicode/ucol.h>
#include <unicode/ustring.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_format.h"

namespace hydra::model::chat_template::jinja {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

std::u16string ToUtf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    i += d.size;
    if (d.code_point >= 0x10000) {
      const char32_t v = d.code_point - 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (v >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (v & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(d.code_point));
    }
  }
  return out;
}

std::string FromUtf16(std::u16string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char16_t u = s[i];
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 &&
        s[i + 1] <= 0xDFFF) {
      AppendUtf8(0x10000 + ((u - 0xD800) << 10) + (s[i + 1] - 0xDC00), out);
      ++i;
    } else {
      AppendUtf8(u, out);
    }
  }
  return out;
}

// Both ICU case mappings share this shape: preflight, then map.
template <typename Fn>
std::string MapCase(std::string_view s, Fn fn) {
  const std::u16string src = ToUtf16(s);
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n =
      fn(nullptr, 0, src.data(), static_cast<int32_t>(src.size()), "", &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return std::string(s);
  std::u16string dst(static_cast<size_t>(n), u'\0');
  err = U_ZERO_ERROR;
  fn(dst.data(), n, src.data(), static_cast<int32_t>(src.size()), "", &err);
  if (U_FAILURE(err)) return std::string(s);
  return FromUtf16(dst);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

size_t SkipDigits(std::string_view s, size_t i) {
  while (i < s.size() && IsDigit(s[i])) ++i;
  return i;
}

// Parses a decimal literal without sign (digits, point, exponent) that
// from_chars accepts; NaN if it fails.
double ParseUnsignedDecimal(std::string_view s) {
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v,
                                 std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range) {
    // from_chars refuses overflow and underflow; JS gives Infinity or 0.
    return std::strtod(std::string(s).c_str(), nullptr);
  }
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nan("");
  return v;
}

// Length of the longest prefix of `s` (from `i`) that is an unsigned
// StrDecimalLiteral without "Infinity": digits [. digits] [e[+-]digits],
// or . digits [e...]. 0 when none.
size_t DecimalPrefix(std::string_view s, size_t i) {
  const size_t start = i;
  size_t j = SkipDigits(s, i);
  bool digits = j > i;
  if (j < s.size() && s[j] == '.') {
    const size_t k = SkipDigits(s, j + 1);
    if (k > j + 1 || digits) {
      digits = true;
      j = k;
    }
  }
  if (!digits) return 0;
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
    const size_t m = SkipDigits(s, k);
    if (m > k) j = m;
  }
  return j - start;
}

}  // namespace

DecodedChar DecodeUtf8(std::string_view s, size_t pos) {
  const unsigned char c = s[pos];
  if (c < 0x80) return {c, 1};
  size_t n = 0;
  char32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return {0xFFFD, 1};
  }
  if (pos + n > s.size()) return {0xFFFD, 1};
  for (size_t k = 1; k < n; ++k) {
    const unsigned char b = s[pos + k];
    if (!IsContinuation(b)) return {0xFFFD, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return {0xFFFD, 1};
  }
  return {cp, n};
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void AppendJs(std::string& dst, std::string_view src) {
  // A high surrogate is ED A0..AF xx, a low one ED B0..BF xx.
  if (dst.size() >= 3 && src.size() >= 3 &&
      static_cast<unsigned char>(dst[dst.size() - 3]) == 0xED &&
      (static_cast<unsigned char>(dst[dst.size() - 2]) & 0xF0) == 0xA0 &&
      static_cast<unsigned char>(src[0]) == 0xED &&
      (static_cast<unsigned char>(src[1]) & 0xF0) == 0xB0) {
    const char32_t high = DecodeUtf8(dst, dst.size() - 3).code_point;
    const char32_t low = DecodeUtf8(src, 0).code_point;
    dst.resize(dst.size() - 3);
    AppendUtf8(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00), dst);
    dst.append(src.substr(3));
    return;
  }
  dst.append(src);
}

bool IsJsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

size_t JsWhitespaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const DecodedChar d = DecodeUtf8(s, pos);
  return IsJsWhitespace(d.code_point) ? d.size : 0;
}

size_t JsWhitespaceBefore(std::string_view s, size_t end) {
  if (end == 0) return 0;
  size_t start = end - 1;
  // Back up over continuation bytes to the lead byte (at most 3).
  while (start > 0 && end - start < 4 &&
         IsContinuation(static_cast<unsigned char>(s[start]))) {
    --start;
  }
  const DecodedChar d = DecodeUtf8(s, start);
  if (start + d.size != end) return 0;
  return IsJsWhitespace(d.code_point) ? d.size : 0;
}

std::string_view TrimStartJs(std::string_view s) {
  size_t i = 0;
  while (size_t n = JsWhitespaceAt(s, i)) i += n;
  return s.substr(i);
}

std::string_view TrimEndJs(std::string_view s) {
  size_t end = s.size();
  while (size_t n = JsWhitespaceBefore(s, end)) end -= n;
  return s.substr(0, end);
}

std::string_view TrimJs(std::string_view s) {
  return TrimEndJs(TrimStartJs(s));
}

size_t Utf16Length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    i += d.size;
    n += d.code_point >= 0x10000 ? 2 : 1;
  }
  return n;
}

std::optional<std::string> CodeUnitAt(std::string_view s, int64_t index) {
  const int64_t length = static_cast<int64_t>(Utf16Length(s));
  if (index < 0) index += length;
  if (index < 0 || index >= length) return std::nullopt;
  int64_t unit = 0;
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    if (d.code_point < 0x10000) {
      if (unit == index) return std::string(s.substr(i, d.size));
      ++unit;
    } else {
      const char32_t v = d.code_point - 0x10000;
      std::string half;
      if (unit == index) AppendUtf8(0xD800 + (v >> 10), half);
      if (unit + 1 == index) AppendUtf8(0xDC00 + (v & 0x3FF), half);
      if (!half.empty()) return half;
      unit += 2;
    }
    i += d.size;
  }
  return std::nullopt;
}

std::vector<std::string> SplitCodePoints(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    out.emplace_back(s.substr(i, d.size));
    i += d.size;
  }
  return out;
}

std::string ToUpperJs(std::string_view s) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
  }
  return MapCase(s, u_strToUpper);
}

std::string ToLowerJs(std::string_view s) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  return MapCase(s, u_strToLower);
}

int CompareUtf16(std::string_view a, std::string_view b) {
  const std::u16string ua = ToUtf16(a);
  const std::u16string ub = ToUtf16(b);
  return ua < ub ? -1 : (ua > ub ? 1 : 0);
}

int LocaleCompare(std::string_view a, std::string_view b) {
  UErrorCode err = U_ZERO_ERROR;
  std::unique_ptr<UCollator, decltype(&ucol_close)> collator(
      ucol_open("", &err), &ucol_close);
  if (U_FAILURE(err)) return CompareUtf16(a, b);
  const std::u16string ua = ToUtf16(a);
  const std::u16string ub = ToUtf16(b);
  switch (ucol_strcoll(collator.get(), ua.data(),
                       static_cast<int32_t>(ua.size()), ub.data(),
                       static_cast<int32_t>(ub.size()))) {
    case UCOL_LESS:
      return -1;
    case UCOL_GREATER:
      return 1;
    default:
      return 0;
  }
}

std::string JsNumberToString(double v) {
  if (std::isnan(v)) return "NaN";
  if (v == 0) return "0";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  std::string out = v < 0 ? "-" : "";
  // The shortest round-trip digits in scientific form: d[.ddd]e[+-]x.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), std::fabs(v),
                               std::chars_format::scientific);
  const std::string_view sci(buf, r.ptr - buf);
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // the decimal point sits after n digits
  if (k <= n && n <= 21) {
    out += digits;
    out.append(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n);
    out += '.';
    out += digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(-n, '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += absl::StrFormat("e%c%d", n - 1 >= 0 ? '+' : '-', std::abs(n - 1));
  }
  return out;
}

std::string JsToFixed1(double v) {
  if (!std::isfinite(v) || std::fabs(v) >= 1e21) return JsNumberToString(v);
  // Below 1e21 an integral double is exact in 128 bits.
  __int128 i = static_cast<__int128>(v);
  const bool negative = i < 0;
  if (negative) i = -i;
  std::string digits;
  do {
    digits.insert(digits.begin(),
                  static_cast<char>('0' + static_cast<int>(i % 10)));
    i /= 10;
  } while (i != 0);
  return (negative ? "-" : "") + digits + ".0";
}

double JsStringToNumber(std::string_view s) {
  s = TrimJs(s);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0') {
    int base = 0;
    if (s[1] == 'x' || s[1] == 'X') base = 16;
    if (s[1] == 'o' || s[1] == 'O') base = 8;
    if (s[1] == 'b' || s[1] == 'B') base = 2;
    if (base != 0) {
      double v = 0;
      for (char c : s.substr(2)) {
        int d = -1;
        if (IsDigit(c)) d = c - '0';
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0 || d >= base) return std::nan("");
        v = v * base + d;
      }
      return v;
    }
  }
  double sign = 1;
  if (s[0] == '+' || s[0] == '-') {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  if (s == "Infinity") return sign * INFINITY;
  if (s.empty() || DecimalPrefix(s, 0) != s.size()) return std::nan("");
  return sign * ParseUnsignedDecimal(s);
}

double JsParseInt(std::string_view s) {
  s = TrimStartJs(s);
  double sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  const size_t n = SkipDigits(s, 0);
  if (n == 0) return std::nan("");
  return sign * ParseUnsignedDecimal(s.substr(0, n));
}

double JsParseFloat(std::string_view s) {
  s = TrimStartJs(s);
  double sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  if (s.substr(0, 8) == "Infinity") return sign * INFINITY;
  const size_t n = DecimalPrefix(s, 0);
  if (n == 0) return std::nan("");
  return sign * ParseUnsignedDecimal(s.substr(0, n));
}

std::string JsonQuote(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    const char32_t cp = d.code_point;
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (cp < 0x20 || (cp >= 0xD800 && cp <= 0xDFFF)) {
          out += absl::StrFormat("\\u%04x", static_cast<uint32_t>(cp));
        } else if (ensure_ascii && cp >= 0x7F) {
          if (cp >= 0x10000) {
            const char32_t v = cp - 0x10000;
            out += absl::StrFormat("\\u%04x\\u%04x",
                                   static_cast<uint32_t>(0xD800 + (v >> 10)),
                                   static_cast<uint32_t>(0xDC00 + (v & 0x3FF)));
          } else {
            out += absl::StrFormat("\\u%04x", static_cast<uint32_t>(cp));
          }
        } else if (cp == 0xFFFD && d.size == 1) {
          AppendUtf8(0xFFFD, out);  // an invalid byte
        } else {
          out.append(s.substr(i, d.size));
        }
    }
    i += d.size;
  }
  out += '"';
  return out;
}

}  // namespace hydra::model::chat_template::jinja
