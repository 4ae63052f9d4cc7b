#include "server/http/openai_response.h"

#include <random>

#include "absl/time/clock.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;

int64_t CodePoints(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

Json Bytes(std::string_view s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

std::string NewResponseId(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kDigits[rng() % 16];
  return id;
}

int64_t UnixSeconds() { return absl::ToUnixSeconds(absl::Now()); }

std::string_view FinishReasonString(engine::FinishReason reason) {
  switch (reason) {
    case engine::FinishReason::kStop:
      return "stop";
    case engine::FinishReason::kLength:
      return "length";
    default:
      return "abort";
  }
}

Json UsageJson(int prompt_tokens, int completion_tokens, int cached_tokens) {
  Json u;
  u["prompt_tokens"] = prompt_tokens;
  u["completion_tokens"] = completion_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["prompt_tokens_details"]["cached_tokens"] = cached_tokens;
  return u;
}

LogprobsBuilder::LogprobsBuilder(const model::Tokenizer& tokenizer,
                                 int last_prompt_token)
    : tokenizer_(tokenizer), previous_(last_prompt_token) {}

std::string LogprobsBuilder::TokenText(int id) const {
  if (previous_ >= 0) {
    const int pair[2] = {previous_, id};
    auto both = tokenizer_.Decode(pair);
    auto before = tokenizer_.Decode(std::span<const int>(pair, 1));
    if (both.ok() && before.ok() && both->size() >= before->size() &&
        both->compare(0, before->size(), *before) == 0) {
      return both->substr(before->size());
    }
  }
  const int one[1] = {id};
  auto text = tokenizer_.Decode(one);
  return text.ok() ? *text : std::string();
}

void LogprobsBuilder::AppendCompletion(const engine::EngineOutput& out,
                                       Json& lp) {
  if (lp.is_null()) {
    lp["tokens"] = Json::array();
    lp["token_logprobs"] = Json::array();
    lp["top_logprobs"] = Json::array();
    lp["text_offset"] = Json::array();
  }
  for (const engine::SampledToken& t : out.logprobs) {
    Json top = Json::object();
    for (const auto& alt : t.top) top[TokenText(alt.token_id)] = alt.logprob;
    const std::string text = TokenText(t.token_id);
    lp["tokens"].push_back(text);
    lp["token_logprobs"].push_back(t.logprob);
    lp["top_logprobs"].push_back(std::move(top));
    lp["text_offset"].push_back(text_offset_);
    text_offset_ += CodePoints(text);
    previous_ = t.token_id;
  }
}

void LogprobsBuilder::AppendChat(const engine::EngineOutput& out,
                                 Json& content) {
  if (!content.is_array()) content = Json::array();
  for (const engine::SampledToken& t : out.logprobs) {
    Json top = Json::array();
    for (const auto& alt : t.top) {
      const std::string alt_text = TokenText(alt.token_id);
      top.push_back(Json{{"token", alt_text},
                         {"logprob", alt.logprob},
                         {"bytes", Bytes(alt_text)}});
    }
    const std::string text = TokenText(t.token_id);
    content.push_back(Json{{"token", text},
                           {"logprob", t.logprob},
                           {"bytes", Bytes(text)},
                           {"top_logprobs", std::move(top)}});
    previous_ = t.token_id;
  }
}

}  // namespace hydra::server::http
