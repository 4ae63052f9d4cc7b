#include "server/api_key.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace hydra::server {
namespace {

TEST(AuthorizationMatchesTest, NeedsTheBearerSchemeAndTheWholeKey) {
  EXPECT_TRUE(AuthorizationMatches("", ""));
  EXPECT_TRUE(AuthorizationMatches("anything", ""));
  EXPECT_TRUE(AuthorizationMatches("Bearer sesame", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("sesame", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("Basic sesame", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("Bearer sesam", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("Bearer sesamee", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("Bearer sesamf", "sesame"));
  EXPECT_FALSE(AuthorizationMatches("Bearer ", "sesame"));
  // A key that is a prefix of the header's, and one with a NUL after it.
  EXPECT_FALSE(
      AuthorizationMatches(std::string("Bearer sesame\0", 14), "sesame"));
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(ReadApiKeyFileTest, TrimsTheTrailingNewlineAndRefusesBadFiles) {
  auto key = ReadApiKeyFile(WriteTemp("key_ok", "s3cret-key\n"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "s3cret-key");

  auto empty = ReadApiKeyFile(WriteTemp("key_empty", "\n"));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos);

  auto two = ReadApiKeyFile(WriteTemp("key_two", "one two\n"));
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);

  auto missing = ReadApiKeyFile(::testing::TempDir() + "/no_such_key_file");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_key_file"),
            std::string::npos);

  auto directory = ReadApiKeyFile(::testing::TempDir());
  EXPECT_FALSE(directory.ok());
}

}  // namespace
}  // namespace hydra::server
