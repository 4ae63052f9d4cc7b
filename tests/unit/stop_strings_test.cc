#include "engine/stop_strings.h"

#include "gtest/gtest.h"

namespace hydra::engine {
namespace {

TEST(StopStringMatcherTest, CatchesAStopSplitOverManyDeltas) {
  StopStringMatcher m({"<end>"});
  std::string out;
  for (const char* d : {"Hello <", "e", "n", "d> never"}) {
    const auto r = m.Push(d);
    out += r.text;
    if (r.stopped) {
      EXPECT_EQ(out, "Hello ");
      return;
    }
  }
  FAIL() << "stop string not found; emitted " << out;
}

TEST(StopStringMatcherTest, ReleasesHeldTextThatTurnsOutNotToStop) {
  StopStringMatcher m({"abc"});
  auto r = m.Push("xa");
  EXPECT_EQ(r.text, "x");  // "a" might start "abc"
  r = m.Push("bd");
  EXPECT_EQ(r.text, "abd");
  EXPECT_FALSE(r.stopped);
  r = m.Push("ab");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.Flush(), "ab");
}

TEST(StopStringMatcherTest, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "lo w"});
  const auto r = m.Push("hello world");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "hel");
}

TEST(StopStringMatcherTest, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.Push("abc").text, "abc");
  EXPECT_EQ(m.Flush(), "");
}

}  // namespace
}  // namespace hydra::engine
