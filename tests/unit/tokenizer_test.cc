#include "model/tokenizer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/test_model.h"

namespace hydra::model {
namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HYDRA_REQUIRE_MODEL();
    auto t = Tokenizer::Load(testing::ModelDir() / "tokenizer.model");
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = std::move(*t);
  }
  // Feeds `ids` one at a time and joins the deltas.
  std::string Stream(std::span<const int> prompt, std::span<const int> ids) {
    IncrementalDetokenizer detok(*tokenizer_, prompt);
    std::string joined;
    for (int id : ids) {
      auto delta = detok.Push(id);
      EXPECT_TRUE(delta.ok()) << delta.status();
      // Never half a character: every delta is valid UTF-8 on its own.
      EXPECT_TRUE(IsValidUtf8(*delta)) << "delta " << *delta;
      joined += *delta;
    }
    joined += *detok.Flush();
    return joined;
  }
  static bool IsValidUtf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
      const unsigned char c = s[i];
      const size_t n = c < 0x80         ? 1
                       : (c >> 5) == 6  ? 2
                       : (c >> 4) == 14 ? 3
                       : (c >> 3) == 30 ? 4
                                        : 0;
      if (n == 0 || i + n > s.size()) return false;
      for (size_t k = 1; k < n; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
      }
      i += n;
    }
    return true;
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TokenizerTest, MatchesGoldenPromptIds) {
  for (const auto& c : testing::LoadGolden()) {
    auto ids = tokenizer_->Encode(c.prompt);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, c.prompt_ids) << c.prompt;
  }
}

TEST_F(TokenizerTest, RoundTripsAsciiAndMultibyteText) {
  for (const std::string text :
       {"Once upon a time, there was a cat.", "Café crème, naïve façade",
        "日本語のテキスト", "emoji 🙂🚀 and math ∑∫√",
        "  leading spaces"}) {
    auto ids = tokenizer_->Encode(text, /*add_bos=*/false);
    ASSERT_TRUE(ids.ok());
    auto decoded = tokenizer_->Decode(*ids);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
}

TEST_F(TokenizerTest, StreamingReproducesFullDecodeAcrossSplitCharacters) {
  const std::string text = "Tom saw 🙂 and 日本 in the café.";
  auto ids = tokenizer_->Encode(text, /*add_bos=*/false);
  ASSERT_TRUE(ids.ok());
  // The emoji and CJK characters fall back to byte tokens, so some
  // characters are split across several tokens.
  int byte_tokens = 0;
  for (int id : *ids) byte_tokens += (id >= 3 && id < 3 + 256);
  ASSERT_GE(byte_tokens, 4) << "expected byte-fallback tokens";
  EXPECT_EQ(Stream({}, *ids), text);
}

TEST_F(TokenizerTest, StreamingAfterPromptKeepsLeadingSpace) {
  auto prompt = tokenizer_->Encode("Once upon a time");
  auto rest = tokenizer_->Encode("there was 日本 cat", false);
  ASSERT_TRUE(prompt.ok() && rest.ok());
  std::vector<int> all = *prompt;
  all.insert(all.end(), rest->begin(), rest->end());
  const std::string full = *tokenizer_->Decode(all);
  const std::string head = *tokenizer_->Decode(*prompt);
  EXPECT_EQ(Stream(*prompt, *rest), full.substr(head.size()));
  EXPECT_EQ(Stream(*prompt, *rest).substr(0, 6), " there");
}

TEST_F(TokenizerTest, RejectsIdsOutsideVocabulary) {
  const std::vector<int> bad = {1, 32000};
  auto decoded = tokenizer_->Decode(bad);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("32000"), std::string::npos);
}

TEST(TokenizerLoadTest, MissingFileIsAClearError) {
  auto t = Tokenizer::Load("/nonexistent/tokenizer.model");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("/nonexistent/tokenizer.model"),
            std::string::npos);
}

// Issue 15 item 2: a tokenizer.model that is a directory used to escape as
// an uncaught std::ios_base::failure (exit 134).
TEST(TokenizerLoadTest, DirectoryInsteadOfAFileIsAClearError) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "tokenizer_dir_test";
  std::filesystem::create_directories(dir / "tokenizer.model");
  for (const auto& load : {Tokenizer::LoadFromModelDir(dir),
                           Tokenizer::Load(dir / "tokenizer.model")}) {
    ASSERT_FALSE(load.ok());
    EXPECT_EQ(load.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(load.status().message().find("tokenizer.model"),
              std::string::npos)
        << load.status();
    EXPECT_NE(load.status().message().find("a directory"), std::string::npos)
        << load.status();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hydra::model
