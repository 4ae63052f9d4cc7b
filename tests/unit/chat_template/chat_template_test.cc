// ChatTemplate: loading a model folder's template and special tokens,
// --chat_template files, what Render passes to the template, and the
// helpers the HTTP front end uses (StartsWithBos, RaisedMessage).
#include "model/chat_template/chat_template.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hydra::model::chat_template {
namespace {

using ::nlohmann::ordered_json;
using ::testing::HasSubstr;

const std::filesystem::path kData = HYDRA_TEST_DATA_DIR "/chat_templates";

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(::testing::TempDir()) /
        ("chat_template_" +
         std::string(
             ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  std::filesystem::path dir_;
};

const ordered_json kConversation = ordered_json::parse(R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "Hi"}
])");

TEST_F(ModelDir, TokenizerConfigTemplateAndAddedTokens) {
  Write("tokenizer_config.json", R"({
    "bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false},
    "eos_token": "<E>",
    "pad_token": null,
    "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ eos_token }}{{ pad_token }}"
  })");
  auto loaded = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  const ChatTemplate& t = **loaded;
  EXPECT_EQ(t.special_tokens().bos_token, "<B>");
  EXPECT_EQ(t.special_tokens().eos_token, "<E>");
  EXPECT_EQ(t.special_tokens().pad_token, "");
  auto with_prompt = t.Render(kConversation, true);
  ASSERT_TRUE(with_prompt.ok()) << with_prompt.status();
  EXPECT_EQ(*with_prompt, "<B>[system:Be brief.][user:Hi]><E>");
  EXPECT_EQ(*t.Render(kConversation, false),
            "<B>[system:Be brief.][user:Hi]<E>");
  EXPECT_TRUE(t.StartsWithBos(*with_prompt));
  EXPECT_FALSE(t.StartsWithBos("[user:Hi]"));
}

TEST_F(ModelDir, NamedTemplatesTakeDefault) {
  Write("tokenizer_config.json", R"({"chat_template": [
    {"name": "tool_use", "template": "tools"},
    {"name": "default", "template": "default {{ messages|length }}"}
  ]})");
  auto loaded = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*(*loaded)->Render(kConversation, false), "default 2");
}

TEST_F(ModelDir, NamedTemplatesWithoutDefaultAreRefused) {
  Write("tokenizer_config.json",
        R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  auto loaded = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(),
              HasSubstr("no \"default\" among the chat templates (rag)"));
}

TEST_F(ModelDir, ChatTemplateJinjaAndSpecialTokensMap) {
  Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  Write("special_tokens_map.json",
        R"({"bos_token": {"content": "<s>"}, "eos_token": "<ignored>"})");
  Write("chat_template.jinja",
        "{{ bos_token }}{{ messages[-1].content }}{{ eos_token }}\n");
  auto loaded = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  // tokenizer_config.json wins over special_tokens_map.json.
  EXPECT_EQ(*(*loaded)->Render(kConversation, false), "<s>Hi</s>");
}

TEST_F(ModelDir, ProcessorChatTemplateJson) {
  Write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  Write("chat_template.json",
        R"({"chat_template": "{{ bos_token }}{{ messages|length }}"})");
  auto loaded = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(*(*loaded)->Render(kConversation, false), "<s>2");
}

TEST_F(ModelDir, NoTemplateIsNullopt) {
  auto empty = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->has_value());
  Write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  auto without = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->has_value());
}

TEST_F(ModelDir, BrokenFilesAreNamed) {
  Write("tokenizer_config.json", "{not json");
  auto bad_json = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_FALSE(bad_json.ok());
  EXPECT_THAT(bad_json.status().message(),
              HasSubstr("tokenizer_config.json: not valid JSON"));

  Write("tokenizer_config.json",
        R"({"chat_template": "ok\n{% include 'x' %}"})");
  auto unsupported = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_FALSE(unsupported.ok());
  EXPECT_THAT(unsupported.status().message(),
              HasSubstr("tokenizer_config.json: chat template line 2: "
                        "unsupported tag 'include'"));

  Write("tokenizer_config.json", R"({"bos_token": 7, "chat_template": "x"})");
  auto bad_token = ChatTemplate::LoadFromModelDir(dir_);
  ASSERT_FALSE(bad_token.ok());
  EXPECT_THAT(bad_token.status().message(),
              HasSubstr("\"bos_token\" is neither a string nor"));
}

TEST_F(ModelDir, LoadFromFileTakesJinjaOrTokenizerConfig) {
  Write("t.jinja", "{{ bos_token }}|{{ messages[0].content }}");
  auto jinja = ChatTemplate::LoadFromFile(dir_ / "t.jinja",
                                          SpecialTokens{.bos_token = "<s>"});
  ASSERT_TRUE(jinja.ok()) << jinja.status();
  EXPECT_EQ(*jinja->Render(kConversation, false), "<s>|Be brief.");

  Write(
      "config.json",
      R"({"bos_token": "<cfg>", "chat_template": "{{ bos_token }}{{ eos_token }}"})");
  auto json = ChatTemplate::LoadFromFile(dir_ / "config.json",
                                         SpecialTokens{.eos_token = "<given>"});
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json->Render(kConversation, false), "<cfg><given>");

  Write("none.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(ChatTemplate::LoadFromFile(dir_ / "none.json", {}).ok());
  EXPECT_FALSE(ChatTemplate::LoadFromFile(dir_ / "missing.jinja", {}).ok());
}

TEST(ChatTemplate, WhatTheTemplateSees) {
  auto t = ChatTemplate::Parse(
      "{{ bos_token is defined }} {{ eos_token }} {{ tools is defined }} {{ "
      "add_generation_prompt }} "
      "{{ enable_thinking }} {{ messages[0].content[0].text }} {{ "
      "raise_exception is defined }} "
      "{{ strftime_now is defined }}",
      SpecialTokens{.eos_token = "<|im_end|>"});
  ASSERT_TRUE(t.ok()) << t.status();
  const ordered_json parts = ordered_json::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "part"}]}])");
  auto out = t->Render(parts, true, {{"enable_thinking", false}});
  ASSERT_TRUE(out.ok()) << out.status();
  // No BOS token (Qwen's is null): bos_token stays undefined.
  EXPECT_EQ(*out, "false <|im_end|> false true false part true true");
  EXPECT_FALSE(t->StartsWithBos(*out));
}

TEST(ChatTemplate, RenderRefusesBadInput) {
  auto t = ChatTemplate::Parse("x", {});
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->Render(ordered_json::object(), false).ok());
  EXPECT_FALSE(
      t->Render(ordered_json::array(), false, ordered_json::array()).ok());
  auto twice = t->Render(ordered_json::array(), false, {{"messages", 1}});
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.status().message(), HasSubstr("sets \"messages\" again"));
}

TEST(ChatTemplate, RaisedMessageTellsTheTemplatesOwnRefusal) {
  std::ifstream in(kData / "mistral-7b-instruct.jinja", std::ios::binary);
  const std::string source((std::istreambuf_iterator<char>(in)),
                           std::istreambuf_iterator<char>());
  auto t = ChatTemplate::Parse(
      source, SpecialTokens{.bos_token = "<s>", .eos_token = "</s>"});
  ASSERT_TRUE(t.ok()) << t.status();
  auto refused = t->Render(
      ordered_json::parse(
          R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])"),
      false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(
      ChatTemplate::RaisedMessage(refused.status()),
      "Conversation roles must alternate user/assistant/user/assistant/...");
  auto ok = t->Render(
      ordered_json::parse(R"([{"role": "user", "content": "a"}])"), false);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "<s>[INST] a [/INST]");
  EXPECT_TRUE(t->StartsWithBos(*ok));
  // Other failures are not the template's raise_exception.
  auto other = ChatTemplate::Parse("{{ none + 1 }}", {});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(ChatTemplate::RaisedMessage(
                other->Render(ordered_json::array(), false).status()),
            std::nullopt);
}

TEST(ChatTemplate, EveryShippedTemplateParses) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kData)) {
    if (entry.path().extension() != ".jinja") continue;
    ++count;
    auto t = ChatTemplate::LoadFromFile(entry.path(), {});
    EXPECT_TRUE(t.ok()) << entry.path() << ": " << t.status();
  }
  EXPECT_GE(count, 6);
}

}  // namespace
}  // namespace hydra::model::chat_template
