#include "bench/loadgen/http_client.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"

namespace hydra::loadgen {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string HttpTarget::HostHeader() const {
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

absl::StatusOr<HttpTarget> ParseHttpTarget(absl::string_view target) {
  absl::string_view t = target;
  if (absl::StartsWith(t, "https://")) {
    return absl::InvalidArgumentError(
        "--target: https is not supported; give HOST:PORT of a plain HTTP "
        "listener");
  }
  absl::ConsumePrefix(&t, "http://");
  absl::ConsumeSuffix(&t, "/");
  const size_t colon = t.rfind(':');
  HttpTarget out;
  if (colon != absl::string_view::npos) {
    out.host = std::string(t.substr(0, colon));
    out.port = std::string(t.substr(colon + 1));
  }
  if (absl::StartsWith(out.host, "[") && absl::EndsWith(out.host, "]")) {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  int port = 0;
  if (out.host.empty() || !absl::SimpleAtoi(out.port, &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target must be HOST:PORT (got \"", target, "\")"));
  }
  return out;
}

struct HttpClient::Impl {
  HttpTarget target;
  std::string api_key;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;  // connected, or empty
  beast::flat_buffer buffer;

  // One attempt on the current connection (made if there is none).
  beast::error_code Attempt(http::request<http::string_body>& request,
                            http::response<http::string_body>& response,
                            absl::Duration timeout) {
    beast::error_code ec;
    const auto budget = absl::ToChronoMilliseconds(timeout);
    if (!stream) {
      tcp::resolver resolver(ioc);
      const auto endpoints = resolver.resolve(target.host, target.port, ec);
      if (ec) return ec;
      stream.emplace(ioc);
      stream->expires_after(budget);
      stream->connect(endpoints, ec);
      if (ec) return ec;
      buffer.clear();
    }
    stream->expires_after(budget);
    http::write(*stream, request, ec);
    if (ec) return ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(*stream, buffer, parser, ec);
    if (ec) return ec;
    response = parser.release();
    return ec;
  }

  absl::StatusOr<HttpResponse> Do(http::request<http::string_body> request,
                                  absl::Duration timeout) {
    request.set(http::field::host, target.HostHeader());
    request.set(http::field::user_agent, "hydra-bench");
    if (!api_key.empty()) {
      request.set(http::field::authorization, "Bearer " + api_key);
    }
    request.keep_alive(true);
    request.prepare_payload();
    http::response<http::string_body> response;
    const bool reused = stream.has_value();
    beast::error_code ec = Attempt(request, response, timeout);
    if (ec && reused && ec != beast::error::timeout) {
      stream.reset();  // the server closed an idle connection: once more
      ec = Attempt(request, response, timeout);
    }
    if (ec) {
      stream.reset();
      const std::string where = absl::StrCat(
          std::string(request.method_string()), " ",
          std::string(request.target()), " on ", target.HostHeader());
      if (ec == beast::error::timeout) {
        return absl::DeadlineExceededError(absl::StrCat(
            where, ": no answer within ", absl::FormatDuration(timeout)));
      }
      return absl::UnavailableError(absl::StrCat(where, ": ", ec.message()));
    }
    if (!response.keep_alive()) stream.reset();
    return HttpResponse{static_cast<int>(response.result_int()),
                        std::move(response.body())};
  }
};

HttpClient::HttpClient(HttpTarget target, std::string api_key)
    : impl_(std::make_unique<Impl>()) {
  impl_->target = std::move(target);
  impl_->api_key = std::move(api_key);
}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Get(const std::string& path,
                                             absl::Duration timeout) {
  return impl_->Do(http::request<http::string_body>(http::verb::get, path, 11),
                   timeout);
}

absl::StatusOr<HttpResponse> HttpClient::PostJson(const std::string& path,
                                                  const std::string& body,
                                                  absl::Duration timeout) {
  http::request<http::string_body> request(http::verb::post, path, 11);
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  return impl_->Do(std::move(request), timeout);
}

}  // namespace hydra::loadgen
