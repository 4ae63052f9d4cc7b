// An OpenAI-compatible HTTP server without a model, the HTTP twin of
// stub_stream_server.cc: POST /v1/completions streams max_tokens tokens of
// text ("x" each) as server-sent events as fast as the client reads them,
// then a usage chunk (stream_options.include_usage) and [DONE]; a prompt
// costs one token per word plus BOS; GET /v1/models lists "stub", GET
// /health answers 200. For hydra-bench --api=openai's tests and for
// measuring its own ceiling; never a stand-in for hydra in tests of hydra.
//
// Usage: hydra_stub_openai_server --port=8999 [--api_key=KEY]
//            [--tokens_per_chunk=N] [--usage_every_chunk]
//            [--max_model_len=N] [--requests_log=FILE]
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on");
ABSL_FLAG(int, port, 8999, "HTTP port");
ABSL_FLAG(std::string, api_key, "",
          "When set, requests need 'Authorization: Bearer <key>' (else 401)");
ABSL_FLAG(int, tokens_per_chunk, 1,
          "Tokens of text in each streamed chunk (the last may hold fewer)");
ABSL_FLAG(bool, usage_every_chunk, false,
          "Put the running usage in every chunk, not only the last");
ABSL_FLAG(int, max_model_len, 1 << 20,
          "Context: longer prompt + max_tokens is refused with 400");
ABSL_FLAG(std::string, requests_log, "",
          "Append every completion request's body here, one JSON a line");

namespace hydra::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

std::mutex log_mu;

int CountWords(const std::string& text) {
  int n = 0;
  for (absl::string_view w : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    (void)w;
    ++n;
  }
  return n;
}

http::response<http::string_body> JsonResponse(
    const http::request<http::string_body>& req, http::status status,
    const json& body) {
  http::response<http::string_body> res(status, req.version());
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

json Error(int code, const std::string& type, const std::string& message) {
  return {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
}

json Usage(int prompt, int completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

// One event as one HTTP chunk, written at once.
void SendEvent(tcp::socket& socket, const std::string& data,
               beast::error_code& ec) {
  const std::string event = absl::StrCat("data: ", data, "\n\n");
  net::write(socket, http::make_chunk(net::buffer(event)), ec);
}

// Streams the completion; returns false when the connection broke.
bool Stream(tcp::socket& socket, const http::request<http::string_body>& req,
            int prompt_tokens, int max_tokens, bool include_usage) {
  http::response<http::empty_body> res(http::status::ok, req.version());
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(req.keep_alive());
  res.chunked(true);
  http::response_serializer<http::empty_body> header(res);
  beast::error_code ec;
  http::write_header(socket, header, ec);
  if (ec) return false;
  const int per_chunk = std::max(1, absl::GetFlag(FLAGS_tokens_per_chunk));
  const bool usage_every = absl::GetFlag(FLAGS_usage_every_chunk);
  int sent = 0;
  while (sent < max_tokens) {
    const int n = std::min(per_chunk, max_tokens - sent);
    sent += n;
    json choice = {{"index", 0},
                   {"text", std::string(n, 'x')},
                   {"logprobs", nullptr},
                   {"finish_reason", nullptr}};
    if (sent == max_tokens) choice["finish_reason"] = "length";
    json chunk = {{"id", "cmpl-stub"},
                  {"object", "text_completion"},
                  {"model", "stub"},
                  {"choices", json::array({choice})}};
    if (usage_every) chunk["usage"] = Usage(prompt_tokens, sent);
    SendEvent(socket, chunk.dump(), ec);
    if (ec) return false;
  }
  if (include_usage) {
    const json chunk = {{"id", "cmpl-stub"},
                        {"object", "text_completion"},
                        {"model", "stub"},
                        {"choices", json::array()},
                        {"usage", Usage(prompt_tokens, max_tokens)}};
    SendEvent(socket, chunk.dump(), ec);
    if (ec) return false;
  }
  SendEvent(socket, "[DONE]", ec);
  if (ec) return false;
  net::write(socket, http::make_chunk_last(), ec);
  return !ec;
}

// Answers one request; returns false when the connection is to close.
bool Handle(tcp::socket& socket, const http::request<http::string_body>& req) {
  beast::error_code ec;
  auto reply = [&](http::status status, const json& body) {
    http::write(socket, JsonResponse(req, status, body), ec);
    return !ec && req.keep_alive();
  };
  const std::string key = absl::GetFlag(FLAGS_api_key);
  if (req.target() == "/health" && req.method() == http::verb::get) {
    return reply(http::status::ok, {{"status", "ok"}});
  }
  if (!key.empty() &&
      req[http::field::authorization] != absl::StrCat("Bearer ", key)) {
    return reply(http::status::unauthorized,
                 Error(401, "authentication_error", "invalid API key"));
  }
  if (req.target() == "/v1/models" && req.method() == http::verb::get) {
    return reply(
        http::status::ok,
        {{"object", "list"},
         {"data", json::array({{{"id", "stub"},
                                {"object", "model"},
                                {"owned_by", "hydra"},
                                {"max_model_len",
                                 absl::GetFlag(FLAGS_max_model_len)}}})}});
  }
  if (req.target() != "/v1/completions" || req.method() != http::verb::post) {
    return reply(http::status::not_found,
                 Error(404, "not_found_error", "no such endpoint"));
  }
  const json body = json::parse(req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("prompt") ||
      !body["prompt"].is_string()) {
    return reply(http::status::bad_request,
                 Error(400, "invalid_request_error", "prompt must be text"));
  }
  if (const std::string log = absl::GetFlag(FLAGS_requests_log); !log.empty()) {
    std::lock_guard<std::mutex> lock(log_mu);
    std::ofstream(log, std::ios::app) << body.dump() << "\n";
  }
  const int prompt_tokens = 1 + CountWords(body["prompt"].get<std::string>());
  const int max_tokens = body.value("max_tokens", 16);
  if (prompt_tokens + max_tokens > absl::GetFlag(FLAGS_max_model_len)) {
    return reply(http::status::bad_request,
                 Error(400, "invalid_request_error",
                       absl::StrCat("prompt (", prompt_tokens,
                                    " tokens) + max_tokens exceed the "
                                    "context of ",
                                    absl::GetFlag(FLAGS_max_model_len))));
  }
  if (body.value("stream", false)) {
    const json options = body.value("stream_options", json::object());
    return Stream(
               socket, req, prompt_tokens, max_tokens,
               options.is_object() && options.value("include_usage", false)) &&
           req.keep_alive();
  }
  return reply(
      http::status::ok,
      {{"id", "cmpl-stub"},
       {"object", "text_completion"},
       {"model", "stub"},
       {"choices", json::array({{{"index", 0},
                                 {"text", std::string(max_tokens, 'x')},
                                 {"finish_reason", "length"}}})},
       {"usage", Usage(prompt_tokens, max_tokens)}});
}

void Serve(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  while (true) {
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) break;
    if (!Handle(socket, req)) break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using boost::asio::ip::tcp;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  boost::asio::io_context ioc;
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  const tcp::endpoint endpoint(
      boost::asio::ip::make_address(absl::GetFlag(FLAGS_host), ec),
      static_cast<unsigned short>(absl::GetFlag(FLAGS_port)));
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(tcp::socket::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "stub openai server: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("stub openai server on %s:%d\n",
              absl::GetFlag(FLAGS_host).c_str(), absl::GetFlag(FLAGS_port));
  std::fflush(stdout);
  std::thread([&acceptor, &ioc] {
    while (true) {
      tcp::socket socket(ioc);
      boost::system::error_code accept_ec;
      acceptor.accept(socket, accept_ec);
      if (accept_ec) continue;
      std::thread(hydra::bench::Serve, std::move(socket)).detach();
    }
  }).detach();
  int signal = 0;
  sigwait(&signals, &signal);
  std::fflush(stdout);
  std::_Exit(0);
}
