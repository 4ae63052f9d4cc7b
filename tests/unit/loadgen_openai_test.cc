// hydra-bench's OpenAI-compatible client, without a network: server-sent
// events cut anywhere, completion chunks, the records they make (timed like
// the gRPC stream's), request bodies, status codes and --target.
#include <chrono>
#include <string>
#include <vector>

#include "bench/loadgen/http_client.h"
#include "bench/loadgen/openai_stream.h"
#include "bench/loadgen/sse.h"
#include "bench/loadgen/token_timeline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hydra::loadgen {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ms = std::chrono::milliseconds;

std::vector<std::string> FeedAll(const std::vector<std::string>& pieces) {
  SseParser parser;
  std::vector<std::string> out;
  for (const std::string& p : pieces) {
    parser.Feed(p, [&](absl::string_view d) { out.emplace_back(d); });
  }
  return out;
}

TEST(Sse, EventsCutAnywhereComeWhole) {
  const std::string stream =
      "data: {\"a\":1}\n\n: keep-alive\n\nevent: x\r\ndata: two\r\ndata: "
      "lines\r\n\r\nid: 7\n\ndata:[DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "two\nlines", "[DONE]"};
  EXPECT_EQ(FeedAll({stream}), want);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    EXPECT_EQ(FeedAll({stream.substr(0, cut), stream.substr(cut)}), want)
        << "cut at " << cut;
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(FeedAll(bytes), want);
}

TEST(Sse, AnUnfinishedEventIsPending) {
  SseParser parser;
  int events = 0;
  parser.Feed("data: {\"choices\"", [&](absl::string_view) { ++events; });
  EXPECT_EQ(events, 0);
  EXPECT_TRUE(parser.pending());
}

TEST(CompletionChunk, TextFinishUsageDoneAndErrors) {
  absl::StatusOr<CompletionChunk> c = ParseCompletionChunk(
      R"({"choices":[{"index":0,"text":" the","finish_reason":null}]})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->text, " the");
  EXPECT_EQ(c->finish_reason, "");
  EXPECT_FALSE(c->usage.has_value());

  c = ParseCompletionChunk(
      R"({"choices":[],"usage":{"prompt_tokens":24,"completion_tokens":12,)"
      R"("prompt_tokens_details":{"cached_tokens":16}}})");
  ASSERT_TRUE(c.ok() && c->usage.has_value());
  EXPECT_EQ(c->usage->prompt_tokens, 24);
  EXPECT_EQ(c->usage->completion_tokens, 12);
  EXPECT_EQ(c->usage->cached_tokens, 16);

  c = ParseCompletionChunk("[DONE]");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->done);

  c = ParseCompletionChunk(
      R"({"error":{"message":"the server is draining","code":503}})");
  ASSERT_TRUE(c.ok() && c->error.has_value());
  EXPECT_EQ(c->error->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(c->error->message(), "the server is draining");

  EXPECT_FALSE(ParseCompletionChunk("{not json").ok());
}

TEST(CompletionRecorder, TimesChunksLikeTheGrpcStream) {
  const auto t0 = Clock::now();
  CompletionRecorder rec(t0);
  rec.OnEvent(R"({"choices":[{"text":"Once","finish_reason":null}]})",
              t0 + ms(50));
  rec.OnEvent(R"({"choices":[{"text":" upon","finish_reason":null}]})",
              t0 + ms(60));
  rec.OnEvent(R"({"choices":[{"text":" a","finish_reason":"length"}]})",
              t0 + ms(80));
  rec.OnEvent(
      R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}})",
      t0 + ms(81));
  rec.OnEvent("[DONE]", t0 + ms(81));
  EXPECT_TRUE(rec.ended());
  RequestRecord r;
  rec.Finish(t0 + ms(90), t0, r);
  EXPECT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r.ttft_ms, 50);
  EXPECT_THAT(r.itl_ms, ElementsAre(10, 20));
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.input_tokens, 5);
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_DOUBLE_EQ(r.e2e_ms, 90);
}

TEST(CompletionRecorder, ChunksOfSeveralTokensTakeTheirUsage) {
  const auto t0 = Clock::now();
  // Running usage in every chunk: each chunk's growth is its tokens.
  CompletionRecorder running(t0);
  running.OnEvent(
      R"({"choices":[{"text":"ab"}],"usage":{"completion_tokens":2}})",
      t0 + ms(10));
  running.OnEvent(R"({"choices":[{"text":"cde","finish_reason":"length"}],)"
                  R"("usage":{"completion_tokens":5}})",
                  t0 + ms(40));
  RequestRecord r;
  running.Finish(t0 + ms(41), t0, r);
  EXPECT_EQ(r.output_tokens, 5);
  EXPECT_THAT(r.itl_ms, ElementsAre(0, 10, 10, 10));

  // Usage only at the end: its count wins, spread over the chunks.
  CompletionRecorder last(t0);
  last.OnEvent(R"({"choices":[{"text":"ab"}]})", t0 + ms(10));
  last.OnEvent(R"({"choices":[{"text":"cd","finish_reason":"length"}]})",
               t0 + ms(30));
  last.OnEvent(R"({"choices":[],"usage":{"completion_tokens":4}})",
               t0 + ms(31));
  last.OnEvent("[DONE]", t0 + ms(31));
  RequestRecord q;
  last.Finish(t0 + ms(32), t0, q);
  EXPECT_EQ(q.output_tokens, 4);
  EXPECT_THAT(q.itl_ms, ElementsAre(0, 10, 10));
}

TEST(CompletionRecorder, FailuresAndCutStreams) {
  const auto t0 = Clock::now();
  CompletionRecorder cut(t0);
  cut.OnEvent(R"({"choices":[{"text":"a"}]})", t0 + ms(5));
  RequestRecord r;
  cut.Finish(t0 + ms(6), t0, r);
  EXPECT_EQ(r.code, absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.error, HasSubstr("[DONE]"));
  EXPECT_EQ(r.finish_reason, "");

  CompletionRecorder error(t0);
  error.OnEvent(R"({"choices":[{"text":"a"}]})", t0 + ms(5));
  error.OnEvent(R"({"error":{"message":"KV cache full","code":503}})",
                t0 + ms(6));
  error.OnEvent(R"({"choices":[{"text":"b","finish_reason":"stop"}]})",
                t0 + ms(7));  // after the error: ignored
  RequestRecord e;
  error.Finish(t0 + ms(8), t0, e);
  EXPECT_EQ(e.code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(e.error, "KV cache full");
  EXPECT_EQ(e.output_tokens, 1);

  CompletionRecorder refused(t0);
  refused.Fail(absl::InvalidArgumentError("prompt too long"));
  refused.Fail(absl::UnavailableError("later"));  // the first one wins
  RequestRecord f;
  refused.Finish(t0 + ms(2), t0, f);
  EXPECT_EQ(f.code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.error, "prompt too long");
  EXPECT_DOUBLE_EQ(f.ttft_ms, -1);
}

TEST(TokenTimeline, SetTotalScalesTheArrivals) {
  const auto t0 = Clock::now();
  TokenTimeline t(t0);
  t.Add(t0 + ms(10), 1);
  t.Add(t0 + ms(20), 3);
  t.Add(t0 + ms(30), 0);  // no tokens: not an arrival
  EXPECT_EQ(t.tokens(), 4);
  RequestRecord r;
  t.Fill(r);
  EXPECT_DOUBLE_EQ(r.ttft_ms, 10);
  EXPECT_THAT(r.itl_ms, ElementsAre(10.0 / 3, 10.0 / 3, 10.0 / 3));

  t.SetTotal(8);  // 1 + 3 of 4 seen: one each, then 4 more as 1:3
  t.Fill(r);
  EXPECT_EQ(r.output_tokens, 8);
  EXPECT_EQ(r.itl_ms.size(), 7u);
  t.SetTotal(1);  // fewer than arrivals: the first carries it
  t.Fill(r);
  EXPECT_EQ(r.output_tokens, 1);
  EXPECT_TRUE(r.itl_ms.empty());
}

TEST(OpenAiRequest, BodyCarriesWhatTheGrpcRequestDoes) {
  StreamRequest req;
  req.prompt = "Once upon";
  req.max_tokens = 12;
  req.temperature = 0.5f;
  req.ignore_eos = true;
  nlohmann::json j =
      nlohmann::json::parse(CompletionRequestJson("stories15M", req, true));
  EXPECT_EQ(j["model"], "stories15M");
  EXPECT_EQ(j["prompt"], "Once upon");
  EXPECT_EQ(j["max_tokens"], 12);
  EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.5);
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  req.ignore_eos = false;
  j = nlohmann::json::parse(CompletionRequestJson("m", req, false));
  EXPECT_FALSE(j.contains("ignore_eos"));
  EXPECT_FALSE(j.contains("stream"));
}

TEST(OpenAiRequest, HttpStatusesAndErrorBodies) {
  EXPECT_EQ(FromHttpStatus(200), absl::StatusCode::kOk);
  EXPECT_EQ(FromHttpStatus(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromHttpStatus(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(FromHttpStatus(429), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(FromHttpStatus(503), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromHttpStatus(504), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(FromHttpStatus(418), absl::StatusCode::kUnknown);
  EXPECT_EQ(ErrorMessageOf(R"({"error":{"message":"no","code":400}})"), "no");
  EXPECT_EQ(ErrorMessageOf("plain text"), "plain text");
}

TEST(HttpTarget, Parses) {
  absl::StatusOr<HttpTarget> t = ParseHttpTarget("127.0.0.1:8000");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "8000");
  t = ParseHttpTarget("http://[::1]:8000/");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->HostHeader(), "[::1]:8000");
  EXPECT_FALSE(ParseHttpTarget("localhost").ok());
  EXPECT_FALSE(ParseHttpTarget("host:http").ok());
  EXPECT_THAT(ParseHttpTarget("https://h:443").status().message(),
              HasSubstr("https"));
}

}  // namespace
}  // namespace hydra::loadgen
