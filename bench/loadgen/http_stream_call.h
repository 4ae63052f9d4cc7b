// One streamed POST /v1/completions on an HTTP/1.1 keep-alive connection,
// timed on arrival of each chunk. Calls run on the backend's Asio threads,
// each connection on its own strand, so thousands can be in flight on a few
// threads; a call owns itself (shared_ptr) until it reports its record.
#ifndef HYDRA_BENCH_LOADGEN_HTTP_STREAM_CALL_H_
#define HYDRA_BENCH_LOADGEN_HTTP_STREAM_CALL_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen/backend.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/openai_stream.h"
#include "bench/loadgen/sse.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"

namespace hydra::loadgen {

// Idle keep-alive connections to one server. HTTP/1.1 carries one stream at
// a time, so the pool grows to the most streams in flight at once.
class ConnectionPool {
 public:
  using Stream = boost::beast::tcp_stream;

  ConnectionPool(boost::asio::io_context& ioc,
                 boost::asio::ip::tcp::resolver::results_type endpoints)
      : ioc_(ioc), endpoints_(std::move(endpoints)) {}

  // An idle connection (`*reused` true), or a new unconnected stream on a
  // strand of its own.
  std::unique_ptr<Stream> Take(bool* reused);
  std::unique_ptr<Stream> New();  // unconnected, on a strand of its own
  void Give(std::unique_ptr<Stream> stream);
  const boost::asio::ip::tcp::resolver::results_type& endpoints() const {
    return endpoints_;
  }

 private:
  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::resolver::results_type endpoints_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Stream>> idle_;  // guarded by mu_
};

class HttpStreamCall : public std::enable_shared_from_this<HttpStreamCall> {
 public:
  struct Target {
    ConnectionPool* pool;
    HttpTarget address;
    std::string api_key;
    std::string model;
  };

  // Sends the request now; `done` gets the record on an Asio thread when
  // the response ends, whatever its status.
  static void Start(const Target& target, const StreamRequest& request,
                    Clock::time_point run_start, int64_t index,
                    StreamDone done);

  HttpStreamCall(const Target& target, const StreamRequest& request,
                 int64_t index, StreamDone done);

 private:
  void Begin();  // on the connection's strand
  void Connect();
  void OnConnect(boost::beast::error_code ec);
  void Write();
  void OnWrite(boost::beast::error_code ec, size_t bytes);
  void Read();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void OnError(boost::beast::error_code ec, const char* during);
  void Complete();

  Target target_;
  StreamDone done_;
  RequestRecord record_;
  std::unique_ptr<ConnectionPool::Stream> stream_;
  bool reused_ = false, retried_ = false, got_bytes_ = false;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  std::optional<
      boost::beast::http::response_parser<boost::beast::http::buffer_body>>
      parser_;
  boost::beast::flat_buffer buffer_;
  char body_[16384];
  std::string error_body_;  // of a non-200 response
  SseParser sse_;
  Clock::time_point start_, deadline_;
  std::chrono::milliseconds timeout_;
  std::optional<CompletionRecorder> recorder_;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_HTTP_STREAM_CALL_H_
