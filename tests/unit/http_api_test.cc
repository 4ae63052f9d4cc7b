// The HTTP front end's pure parts: OpenAI request parsing (types, prompt
// forms, chat messages, refused features) and the error shape.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/http/errors.h"
#include "server/http/openai_request.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;
using ::testing::HasSubstr;

absl::StatusOr<OpenAiRequest> Completion(const char* body) {
  return ParseCompletionRequest(Json::parse(body));
}
absl::StatusOr<OpenAiRequest> Chat(const char* body) {
  return ParseChatRequest(Json::parse(body));
}

// The field an error names (FromStatus's param).
std::string Param(const absl::Status& s) { return FromStatus(s).param; }

TEST(OpenAiRequestTest, CompletionFieldsAndPromptForms) {
  auto r = Completion(
      R"({"model": "m", "prompt": "Hi", "max_tokens": 5.0, "temperature": 0,
          "top_k": -1, "stop": "x", "seed": 18446744073709551615, "n": 3,
          "stream": true, "stream_options": {"include_usage": true},
          "user": "ignored", "echo": false, "unknown_field": [1]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<PromptText>(r->fields.prompt).text, "Hi");
  EXPECT_EQ(r->fields.max_tokens, 5);
  EXPECT_EQ(r->fields.top_k, 0);
  EXPECT_EQ(r->fields.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r->fields.seed, 18446744073709551615u);
  EXPECT_EQ(r->n, 3);
  EXPECT_TRUE(r->stream && r->include_usage && r->max_tokens_set);

  r = Completion(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<std::vector<int>>(r->fields.prompt),
            (std::vector<int>{1, 2, 3}));
  r = Completion(R"({"prompt": [[4, 5]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<std::vector<int>>(r->fields.prompt),
            (std::vector<int>{4, 5}));
  r = Completion(R"({"prompt": ["one"], "temperature": null})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->fields.temperature.has_value());
}

TEST(OpenAiRequestTest, TypeErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt": "a", "max_tokens": "ten"})", "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 3000000000})", "max_tokens"},
      {R"({"prompt": "a", "temperature": true})", "temperature"},
      {R"({"prompt": "a", "stop": [1]})", "stop[0]"},
      {R"({"prompt": "a", "n": 17})", "n"},
      {R"({"prompt": "a", "echo": true})", "echo"},
      {R"({"prompt": "a", "suffix": "b"})", "suffix"},
      {R"({"prompt": ["a", "b"]})", "prompt"},
      {R"({"prompt": [1, "b"]})", "prompt[1]"},
      {R"({"max_tokens": 1})", "prompt"},
  };
  for (const auto& [body, param] : cases) {
    auto r = Completion(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(Param(r.status()), param) << body << ": " << r.status();
  }
}

TEST(OpenAiRequestTest, ChatMessagesAndRefusedFeatures) {
  auto r = Chat(
      R"({"messages": [{"role": "system", "content": "s"},
                       {"role": "user", "content": [{"type": "text", "text": "a"},
                                                    {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 7, "max_tokens": 99, "logprobs": true,
          "top_logprobs": 3, "response_format": {"type": "text"},
          "tool_choice": "none"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->messages, Json::parse(R"([{"role": "system", "content": "s"},
                            {"role": "user", "content": "a\nb"}])"));
  EXPECT_EQ(r->fields.max_tokens, 7);
  EXPECT_EQ(r->max_tokens_name, "max_completion_tokens");
  EXPECT_EQ(r->fields.logprobs, 3);

  const std::pair<const char*, const char*> cases[] = {
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})",
       "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})",
       "tools"},
      {R"({"messages": [{"role": "user", "content": "x"}],
           "response_format": {"type": "json_object"}})",
       "response_format"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
       "top_logprobs"},
  };
  for (const auto& [body, param] : cases) {
    auto r = Chat(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(Param(r.status()), param) << body << ": " << r.status();
  }
}

TEST(OpenAiRequestTest, JsonBodiesThatAreNotObjects) {
  EXPECT_FALSE(ParseJsonObject("{\"a\": ").ok());
  EXPECT_FALSE(ParseJsonObject("[1]").ok());
  EXPECT_FALSE(ParseJsonObject("\"caf\xe9\"").ok());
  EXPECT_FALSE(ParseJsonObject("").ok());
  EXPECT_TRUE(ParseJsonObject("{}").ok());
}

TEST(ErrorsTest, OpenAiShape) {
  const ApiError e =
      FromStatus(absl::InvalidArgumentError("top_p: 1.5 is outside (0, 1]"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "top_p");
  const Json body = Json::parse(ErrorBody(e));
  EXPECT_EQ(body["error"]["message"], "top_p: 1.5 is outside (0, 1]");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "top_p");
  EXPECT_EQ(FromStatus(absl::ResourceExhaustedError("full")).status, 429);
  EXPECT_EQ(FromStatus(absl::UnavailableError("loading")).status, 503);
  // A message without a field: no param.
  EXPECT_TRUE(FromStatus(absl::InvalidArgumentError("the body is not valid "
                                                    "JSON: x"))
                  .param.empty());
}

}  // namespace
}  // namespace hydra::server::http
