// Byte-level BPE (tokenizer.json) against Hugging Face's own tokenizers
// library: tests/data/byte_level_bpe_golden.json holds the ids and decoded
// text it gives (see make_bpe_golden.js there) with the Qwen3 and Llama 3
// tokenizer.json files that scripts/setup.sh fetches to models/tokenizers.
#include "model/byte_level_bpe.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/unit/test_model.h"

namespace hydra::model {
namespace {

std::filesystem::path TokenizersDir() {
  return testing::ModelDir().parent_path() / "tokenizers";
}

nlohmann::json Golden() {
  std::ifstream in(testing::DataDir() / "byte_level_bpe_golden.json");
  return nlohmann::json::parse(in);
}

class HuggingFaceGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto file = TokenizersDir() / GetParam() / "tokenizer.json";
    if (!std::filesystem::exists(file)) {
      GTEST_SKIP() << "no " << file << " (scripts/setup.sh fetches it)";
    }
    auto loaded = Tokenizer::Load(file);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = std::move(*loaded);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(HuggingFaceGoldenTest, EncodesAndDecodesAsTheReference) {
  const nlohmann::json cases = Golden()["tokenizers"][GetParam()];
  ASSERT_GT(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    SCOPED_TRACE(text);
    const auto ids = c["ids"].get<std::vector<int>>();
    auto plain = tokenizer_->Encode(text, /*add_bos=*/false);
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(*plain, ids);
    auto with_special = tokenizer_->Encode(text, /*add_bos=*/true);
    ASSERT_TRUE(with_special.ok()) << with_special.status();
    EXPECT_EQ(*with_special, c["ids_with_special"].get<std::vector<int>>());
    auto decoded = tokenizer_->Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>());
  }
}

// Streaming through byte tokens: an emoji is several tokens, none of which
// is a character alone; the deltas still join to the whole text.
TEST_P(HuggingFaceGoldenTest, IncrementalDetokenizerJoinsToTheWholeText) {
  const std::string text =
      "emoji 🙂👍🏽 and 東京, then  spaces\nand\ttabs: ééé!";
  auto ids = tokenizer_->Encode(text, false);
  ASSERT_TRUE(ids.ok());
  const std::vector<int> prompt(ids->begin(), ids->begin() + 2);
  IncrementalDetokenizer detok(*tokenizer_, prompt);
  std::string joined;
  for (size_t i = 2; i < ids->size(); ++i) {
    auto delta = detok.Push((*ids)[i]);
    ASSERT_TRUE(delta.ok()) << delta.status();
    EXPECT_EQ(delta->find("\xEF\xBF\xBD"), std::string::npos)
        << "half a character streamed";
    joined += *delta;
  }
  auto rest = detok.Flush();
  ASSERT_TRUE(rest.ok());
  joined += *rest;
  auto head = tokenizer_->Decode(prompt);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head + joined, text);
}

// One enormous word is a single BPE piece, and it decodes back to itself.
// (Merging it takes well under a second; the quadratic merge loop this
// replaced needed minutes, which would stall a server thread.)
TEST_P(HuggingFaceGoldenTest, AHugeSinglePieceRoundTrips) {
  std::string word;
  for (int i = 0; i < 200000; ++i) word += "abcdefghij"[(i * 7 + i / 13) % 10];
  auto ids = tokenizer_->Encode(word, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_LT(ids->size(), word.size());  // merges happened
  auto back = tokenizer_->Decode(*ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, word);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, HuggingFaceGoldenTest,
                         ::testing::Values("qwen3", "llama3"));

TEST(TokenizerDirTest, ModelDirPrefersTokenizerModelThenJson) {
  const auto json = TokenizersDir() / "qwen3" / "tokenizer.json";
  if (!std::filesystem::exists(json)) {
    GTEST_SKIP() << "no " << json << " (scripts/setup.sh fetches it)";
  }
  const auto dir = std::filesystem::path(::testing::TempDir()) / "bpe_dir";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::create_symlink(json, dir / "tokenizer.json");
  auto bpe = Tokenizer::LoadFromModelDir(dir);
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  EXPECT_EQ((*bpe)->bos_id(), -1);  // Qwen adds no BOS
  EXPECT_EQ((*bpe)->vocab_size(), 151669);
  EXPECT_EQ(*(*bpe)->Encode("Once upon a time"),
            (std::vector<int>{12522, 5193, 264, 882}));
  std::filesystem::remove(dir / "tokenizer.json");
  auto none = Tokenizer::LoadFromModelDir(dir);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("tokenizer.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A minimal byte-level tokenizer.json: the 256 byte characters, a merge.
nlohmann::json MinimalTokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                           (b >= 0xAE && b <= 0xFF);
    const int c = printable ? b : 256 + extra++;
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    vocab[s] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  return {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", {"a b", "ab c"}},
        {"ignore_merges", false}}},
      {"added_tokens",
       {{{"id", 258}, {"content", "<|x|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
  };
}

TEST(ByteLevelBpeTest, MergesByRankAndSplitsAddedTokens) {
  auto t = ByteLevelBpe::Parse(MinimalTokenizer().dump(), "", "minimal");
  ASSERT_TRUE(t.ok()) << t.status();
  // "abc" merges a+b, then ab+c; the added token is matched whole; the
  // GPT-2 regex keeps a space on the word after it.
  EXPECT_EQ(*(*t)->Encode("abc<|x|>ab"), (std::vector<int>{257, 258, 256}));
  EXPECT_EQ(*(*t)->Encode("c  ab"), (std::vector<int>{'c', ' ', ' ', 256}));
  EXPECT_EQ((*t)->Decode(std::vector<int>{257, 258, ' ', 0xE6, 0x97}),
            "abc<|x|> \xEF\xBF\xBD");  // a cut character is one U+FFFD
  EXPECT_EQ((*t)->bos_id(), -1);
  // tokenizer_config.json asks for BOS.
  auto with_bos = ByteLevelBpe::Parse(
      MinimalTokenizer().dump(),
      R"({"add_bos_token": true, "bos_token": {"content": "<|x|>"},
          "eos_token": "abc"})",
      "minimal");
  ASSERT_TRUE(with_bos.ok()) << with_bos.status();
  EXPECT_EQ((*with_bos)->bos_id(), 258);
  EXPECT_EQ((*with_bos)->eos_id(), 257);
}

TEST(ByteLevelBpeTest, RefusesWhatItDoesNotImplementNamingTheField) {
  struct Case {
    std::string field;
    std::function<void(nlohmann::json&)> spoil;
  };
  const std::vector<Case> cases = {
      {"model.type", [](auto& j) { j["model"]["type"] = "WordPiece"; }},
      {"model.byte_fallback",
       [](auto& j) { j["model"]["byte_fallback"] = true; }},
      {"model.merges[1]", [](auto& j) { j["model"]["merges"][1] = "ab zz"; }},
      {"model.vocab", [](auto& j) { j["model"]["vocab"].erase("z"); }},
      {"normalizer.type",
       [](auto& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       }},
      {"pre_tokenizer[0].type",
       [](auto& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}};
       }},
      {"look-around",
       [](auto& j) {
         j["pre_tokenizer"] = {
             {"type", "Sequence"},
             {"pretokenizers",
              {{{"type", "Split"},
                {"pattern", {{"Regex", "a(?=b)|\\s+"}}},
                {"behavior", "Isolated"},
                {"invert", false}},
               {{"type", "ByteLevel"}, {"use_regex", false}}}}};
       }},
      {"decoder.type",
       [](auto& j) {
         j["decoder"] = {{"type", "Metaspace"}};
       }},
      {"added_tokens[0].lstrip",
       [](auto& j) { j["added_tokens"][0]["lstrip"] = true; }},
      {"post_processor.single",
       [](auto& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single",
                                 {{{"Sequence", {{"id", "A"}}}},
                                  {{"SpecialToken", {{"id", "<|x|>"}}}}}}};
       }},
  };
  for (const Case& c : cases) {
    nlohmann::json j = MinimalTokenizer();
    c.spoil(j);
    auto t = ByteLevelBpe::Parse(j.dump(), "", "spoiled.json");
    ASSERT_FALSE(t.ok()) << c.field;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.field), std::string::npos)
        << t.status().message();
    EXPECT_NE(t.status().message().find("spoiled.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace hydra::model
