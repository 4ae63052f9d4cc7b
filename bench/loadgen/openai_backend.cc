#include "bench/loadgen/openai_backend.h"

#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/http_stream_call.h"
#include "bench/loadgen/openai_stream.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "nlohmann/json.hpp"

namespace hydra::loadgen {

namespace net = boost::asio;
using nlohmann::json;

struct OpenAiBackend::Impl {
  OpenAiOptions options;
  HttpTarget address;
  HttpClient client;  // the calls before a run
  std::string model;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{
      ioc.get_executor()};
  std::optional<ConnectionPool> pool;  // once the target has resolved
  std::vector<std::thread> threads;

  Impl(OpenAiOptions o, HttpTarget a)
      : options(std::move(o)),
        address(std::move(a)),
        client(address, options.api_key) {}

  // An HTTP error answer as a status: "GET /v1/models on HOST:PORT failed:
  // UNAUTHENTICATED: <the server's message>".
  absl::Status HttpError(absl::string_view what, const HttpResponse& r) const {
    const absl::StatusCode code = FromHttpStatus(r.status);
    std::string message = ErrorMessageOf(r.body);
    if (message.empty()) message = absl::StrCat("HTTP ", r.status);
    return absl::Status(
        code, absl::StrCat(what, " on ", address.HostHeader(), " failed: ",
                           absl::StatusCodeToString(code), ": ", message));
  }
};

absl::StatusOr<std::unique_ptr<OpenAiBackend>> OpenAiBackend::Create(
    OpenAiOptions options) {
  absl::StatusOr<HttpTarget> address = ParseHttpTarget(options.target);
  if (!address.ok()) return address.status();
  if (options.threads < 1) {
    return absl::InvalidArgumentError("the HTTP client needs a thread");
  }
  return std::make_unique<OpenAiBackend>(std::move(options),
                                         *std::move(address));
}

OpenAiBackend::OpenAiBackend(OpenAiOptions options, HttpTarget address)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(address))) {
  for (int i = 0; i < impl_->options.threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
}

OpenAiBackend::~OpenAiBackend() {
  impl_->work.reset();
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
}

absl::StatusOr<ServerModel> OpenAiBackend::WaitForModel() {
  Impl& m = *impl_;
  const absl::Time deadline = absl::Now() + m.options.timeout;
  while (true) {
    absl::StatusOr<HttpResponse> health =
        m.client.Get("/health", absl::Seconds(10));
    // 200 serving; 503 loading; anything else (404: no /health) lets
    // /v1/models tell.
    if (health.ok() && health->status != 503) break;
    if (absl::Now() > deadline) {
      if (!health.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "cannot connect to ", m.address.HostHeader(), " within ",
            absl::FormatDuration(m.options.timeout),
            " (is an OpenAI-compatible server listening there? see --target; ",
            health.status().message(), ")"));
      }
      return absl::UnavailableError(absl::StrCat(
          m.address.HostHeader(), " still answers 503 on /health after ",
          absl::FormatDuration(m.options.timeout), ": ",
          ErrorMessageOf(health->body)));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  absl::StatusOr<HttpResponse> models =
      m.client.Get("/v1/models", absl::Seconds(10));
  if (!models.ok()) return models.status();
  if (models->status != 200) return m.HttpError("GET /v1/models", *models);
  const json list = json::parse(models->body, nullptr, false);
  const json* data =
      list.is_object() && list.contains("data") && list["data"].is_array()
          ? &list["data"]
          : nullptr;
  ServerModel out;
  out.architecture = "OpenAI API";
  const json* card = nullptr;
  if (data != nullptr) {
    for (const json& entry : *data) {
      if (!entry.is_object() || !entry.contains("id")) continue;
      const std::string id =
          entry["id"].is_string() ? entry["id"].get<std::string>() : "";
      if (m.options.model.empty() || id == m.options.model) {
        card = &entry;
        break;
      }
    }
  }
  if (card == nullptr) {
    if (m.options.model.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("GET /v1/models on ", m.address.HostHeader(),
                       " lists no model: name one with --model"));
    }
    out.name = m.options.model;  // not listed: the server will judge
  } else {
    out.name = (*card)["id"].get<std::string>();
    if (const auto len = card->find("max_model_len");
        len != card->end() && len->is_number_integer()) {
      out.max_context = len->get<int>();
    }
  }
  m.model = out.name;
  if (!m.pool) {
    net::ip::tcp::resolver resolver(m.ioc);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(m.address.host, m.address.port, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat(
          "cannot resolve ", m.address.HostHeader(), ": ", ec.message()));
    }
    m.pool.emplace(m.ioc, std::move(endpoints));
  }
  return out;
}

absl::StatusOr<int> OpenAiBackend::CountPromptTokens(const std::string& text) {
  Impl& m = *impl_;
  StreamRequest probe;
  probe.prompt = text;
  probe.max_tokens = 1;
  probe.ignore_eos = false;
  absl::StatusOr<HttpResponse> r = m.client.PostJson(
      "/v1/completions", CompletionRequestJson(m.model, probe, false),
      absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->status != 200) return m.HttpError("POST /v1/completions", *r);
  const json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object() ||
      !j["usage"].contains("prompt_tokens") ||
      !j["usage"]["prompt_tokens"].is_number_integer()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "POST /v1/completions on ", m.address.HostHeader(),
        " answered no usage.prompt_tokens: cannot size prompts; use "
        "--dataset"));
  }
  return j["usage"]["prompt_tokens"].get<int>();
}

void OpenAiBackend::StartStream(const StreamRequest& request,
                                Clock::time_point run_start, int64_t index,
                                StreamDone done) {
  Impl& m = *impl_;
  HttpStreamCall::Start(
      HttpStreamCall::Target{&*m.pool, m.address, m.options.api_key, m.model},
      request, run_start, index, std::move(done));
}

}  // namespace hydra::loadgen
