// hydra's chat template renderer against @huggingface/jinja: every
// template of tests/data/chat_templates with every conversation of
// conversations.json, with and without add_generation_prompt, must give
// the reference's output byte for byte, or fail where the reference fails;
// so must every snippet of snippets.json (one construct each).
// reference_test.sh renders the reference's side first (node) and passes
// its JSON in HYDRA_CHAT_TEMPLATE_EXPECTED.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "common/read_file.h"
#include "gtest/gtest.h"
#include "model/chat_template/chat_template.h"
#include "model/chat_template/jinja/template.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template {
namespace {

using ::nlohmann::ordered_json;

ordered_json ReadJson(const std::filesystem::path& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    ADD_FAILURE() << text.status();
    return ordered_json();
  }
  return ordered_json::parse(*text);
}

// Bytes made readable: control characters and quotes escaped.
std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Where two outputs part, with some context on both sides.
std::string Diff(const std::string& expected, const std::string& actual) {
  size_t at = 0;
  while (at < expected.size() && at < actual.size() &&
         expected[at] == actual[at])
    ++at;
  const size_t from = at > 60 ? at - 60 : 0;
  return "first difference at byte " + std::to_string(at) + " (expected " +
         std::to_string(expected.size()) + " bytes, got " +
         std::to_string(actual.size()) + ")\n  reference: ..." +
         Escape(expected.substr(from, at - from)) + " >>> " +
         Escape(expected.substr(at, 80)) + "\n  hydra:     ..." +
         Escape(actual.substr(from, at - from)) + " >>> " +
         Escape(actual.substr(at, 80));
}

class ReferenceEquality : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* expected = std::getenv("HYDRA_CHAT_TEMPLATE_EXPECTED");
    if (expected == nullptr) {
      GTEST_SKIP()
          << "HYDRA_CHAT_TEMPLATE_EXPECTED not set: run reference_test.sh";
    }
    expected_ = ReadJson(expected);
    conversations_ =
        ReadJson(data_dir_ / "conversations.json")["conversations"];
  }

  // HYDRA_CHAT_TEMPLATE_DATA points the test at another set of templates
  // (for trying many more than the repository ships).
  const std::filesystem::path data_dir_ =
      std::getenv("HYDRA_CHAT_TEMPLATE_DATA") != nullptr
          ? std::getenv("HYDRA_CHAT_TEMPLATE_DATA")
          : HYDRA_TEST_DATA_DIR "/chat_templates";
  ordered_json expected_;
  ordered_json conversations_;
};

TEST_F(ReferenceEquality, EveryTemplateConversationAndGenerationPrompt) {
  // The templates and conversations, by name.
  std::map<std::string, ChatTemplate> templates;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_)) {
    if (entry.path().extension() != ".jinja") continue;
    const std::string name = entry.path().stem().string();
    std::filesystem::path tokens_path = entry.path();
    tokens_path.replace_extension(".json");
    const ordered_json tokens = ReadJson(tokens_path);
    SpecialTokens special;
    if (tokens["bos_token"].is_string())
      special.bos_token = tokens["bos_token"];
    if (tokens["eos_token"].is_string())
      special.eos_token = tokens["eos_token"];
    auto loaded = ChatTemplate::LoadFromFile(entry.path(), special);
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status();
    templates.emplace(name, *std::move(loaded));
  }
  std::map<std::string, const ordered_json*> conversations;
  for (const ordered_json& c : conversations_) conversations[c["name"]] = &c;
  ASSERT_GE(templates.size(), 6u);
  std::cout << templates.size() << " templates from " << data_dir_ << "\n";
  ASSERT_GE(conversations.size(), 10u);

  int equal = 0, both_failed = 0;
  std::map<std::string, int> rendered_per_template;
  std::set<std::tuple<std::string, std::string, bool>> seen;
  for (const ordered_json& c : expected_["cases"]) {
    const std::string name = c["template"];
    const std::string conversation = c["conversation"];
    const bool add_generation_prompt = c["add_generation_prompt"];
    seen.emplace(name, conversation, add_generation_prompt);
    const std::string label =
        name + " x " + conversation +
        (add_generation_prompt ? " (add_generation_prompt)" : "");
    ASSERT_TRUE(templates.contains(name)) << label;
    ASSERT_TRUE(conversations.contains(conversation)) << label;
    const ordered_json& conv = *conversations[conversation];
    const ordered_json extra =
        conv.contains("extra") ? conv["extra"] : ordered_json::object();
    auto rendered = templates.at(name).Render(conv["messages"],
                                              add_generation_prompt, extra);
    if (!c["error"].is_null()) {
      EXPECT_FALSE(rendered.ok())
          << label << ": the reference failed ("
          << c["error"].get<std::string>() << ") but hydra rendered:\n"
          << Escape(rendered.ok() ? *rendered : "");
      if (!rendered.ok()) ++both_failed;
      continue;
    }
    ASSERT_TRUE(c["output"].is_string()) << label;
    const std::string expected = c["output"];
    if (!rendered.ok()) {
      ADD_FAILURE() << label << ": hydra failed (" << rendered.status()
                    << ") where the reference rendered:\n"
                    << Escape(expected);
      continue;
    }
    EXPECT_TRUE(*rendered == expected)
        << label << ": " << Diff(expected, *rendered);
    if (*rendered == expected) {
      ++equal;
      ++rendered_per_template[name];
    }
  }
  // Nothing left out: every template x conversation x flag was compared.
  EXPECT_EQ(seen.size(), templates.size() * conversations.size() * 2);
  // A reference run that failed everywhere would prove nothing. (Another
  // data set may hold templates that fail on every conversation.)
  if (std::getenv("HYDRA_CHAT_TEMPLATE_DATA") == nullptr) {
    for (const auto& [name, _] : templates) {
      EXPECT_GE(rendered_per_template[name], 4)
          << name << " rendered too few conversations";
    }
  }
  std::cout << expected_["reference"].get<std::string>() << ": " << equal
            << " outputs equal byte for byte, " << both_failed
            << " failed on both sides, of " << seen.size() << " cases\n";
}

TEST_F(ReferenceEquality, EverySnippet) {
  const ordered_json snippets =
      ReadJson(data_dir_ / "snippets.json")["snippets"];
  std::map<std::string, const ordered_json*> expected;
  for (const ordered_json& e : expected_["snippets"]) expected[e["name"]] = &e;
  ASSERT_EQ(expected.size(), snippets.size());
  int equal = 0, both_failed = 0;
  for (const ordered_json& snippet : snippets) {
    const std::string name = snippet["name"];
    ASSERT_TRUE(expected.contains(name)) << name;
    const ordered_json& e = *expected[name];
    std::vector<std::pair<std::string, jinja::Value>> variables;
    for (const auto& [key, value] : snippet["context"].items()) {
      variables.emplace_back(key, jinja::FromJson(value));
    }
    absl::StatusOr<jinja::Template> parsed =
        jinja::Template::Parse(snippet["template"].get<std::string>());
    absl::StatusOr<std::string> rendered =
        parsed.ok() ? parsed->Render(variables)
                    : absl::StatusOr<std::string>(parsed.status());
    if (!e["error"].is_null()) {
      EXPECT_FALSE(rendered.ok())
          << name << ": the reference failed (" << e["error"].get<std::string>()
          << ") but hydra rendered:\n"
          << Escape(rendered.ok() ? *rendered : "");
      if (!rendered.ok()) ++both_failed;
      continue;
    }
    const std::string output = e["output"];
    if (!rendered.ok()) {
      ADD_FAILURE() << name << ": hydra failed (" << rendered.status()
                    << ") where the reference rendered:\n"
                    << Escape(output);
      continue;
    }
    EXPECT_TRUE(*rendered == output) << name << ": " << Diff(output, *rendered);
    if (*rendered == output) ++equal;
  }
  std::cout << "snippets: " << equal << " equal byte for byte, " << both_failed
            << " failed on both sides, of " << snippets.size() << "\n";
}

}  // namespace
}  // namespace hydra::model::chat_template
