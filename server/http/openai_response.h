// Engine outputs → OpenAI response JSON: completion and chat objects, their
// streamed chunks, usage and logprobs.
#ifndef HYDRA_SERVER_HTTP_OPENAI_RESPONSE_H_
#define HYDRA_SERVER_HTTP_OPENAI_RESPONSE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/engine.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace hydra::server::http {

// "cmpl-" / "chatcmpl-" followed by 24 random hex digits.
std::string NewResponseId(std::string_view prefix);
int64_t UnixSeconds();

// "stop", "length"; "abort" for cancelled or timed-out requests.
std::string_view FinishReasonString(engine::FinishReason reason);

// {prompt_tokens, completion_tokens, total_tokens,
//  prompt_tokens_details: {cached_tokens}}.
nlohmann::ordered_json UsageJson(int prompt_tokens, int completion_tokens,
                                 int cached_tokens);

// Per choice: turns each output's sampled tokens into logprob entries. A
// token's text is decoded after the token before it, so a SentencePiece
// word keeps its leading space.
class LogprobsBuilder {
 public:
  LogprobsBuilder(const model::Tokenizer& tokenizer, int last_prompt_token);

  // Completions shape: appends to {tokens, token_logprobs, top_logprobs,
  // text_offset} (an object with those four arrays, created when null).
  void AppendCompletion(const engine::EngineOutput& out,
                        nlohmann::ordered_json& lp);
  // Chat shape: appends {token, logprob, bytes, top_logprobs} to `content`.
  void AppendChat(const engine::EngineOutput& out,
                  nlohmann::ordered_json& content);

 private:
  std::string TokenText(int id) const;

  const model::Tokenizer& tokenizer_;
  int previous_;
  int64_t text_offset_ = 0;  // in code points, as OpenAI counts
};

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_OPENAI_RESPONSE_H_
