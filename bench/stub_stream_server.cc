// A hydra-API server without a model, for measuring the load generator
// itself: GenerateStream sends max_tokens messages of one token each as fast
// as the client takes them, Tokenize counts one token per word plus BOS, and
// GetModelInfo reports an unbounded context. Never a stand-in in tests.
//
// Usage: hydra_stub_stream_server --port=50999
#include <csignal>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "hydra/v1/inference.grpc.pb.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on");
ABSL_FLAG(int, port, 50999, "gRPC port");

namespace hydra::bench {
namespace {

// Streams `total` one-token messages, each write started when the previous
// one completes (gRPC allows one write in flight per call).
class TokenStream final
    : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
 public:
  TokenStream(int prompt_tokens, int total) : total_(total) {
    usage_.set_prompt_tokens(prompt_tokens);
    usage_.set_completion_tokens(total);
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok)
      return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    Next();
  }
  void OnDone() override { self_.reset(); }
  void Own(std::unique_ptr<TokenStream> self) { self_ = std::move(self); }

 private:
  void Next() {
    if (sent_ == total_) return Finish(grpc::Status::OK);
    message_.Clear();
    message_.add_token_ids(1000 + sent_ % 1000);
    message_.set_text("x");
    if (++sent_ == total_) {
      message_.set_finish_reason(v1::FINISH_REASON_LENGTH);
      *message_.mutable_usage() = usage_;
    }
    StartWrite(&message_);
  }

  std::unique_ptr<TokenStream> self_;
  v1::GenerateStreamResponse message_;
  v1::Usage usage_;
  int total_;
  int sent_ = 0;
};

int CountWords(const std::string& text) {
  int n = 0;
  for (absl::string_view w : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    (void)w;
    ++n;
  }
  return n;
}

class StubService final : public v1::Inference::CallbackService {
  grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext*,
      const v1::GenerateRequest* request) override {
    const int total = request->stopping().has_max_tokens()
                          ? request->stopping().max_tokens()
                          : 16;
    auto stream =
        std::make_unique<TokenStream>(1 + CountWords(request->prompt()), total);
    TokenStream* raw = stream.get();
    raw->Own(std::move(stream));
    return raw;
  }

  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override {
    const int n = 1 + CountWords(request->text());
    for (int i = 0; i < n; ++i) response->add_token_ids(i);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest*,
                                         v1::ModelInfo* response) override {
    response->set_model_name("stub");
    response->set_architecture("none");
    response->set_max_context(1 << 20);
    response->set_tensor_parallel_size(1);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Blocked before gRPC starts its threads, so that only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  hydra::bench::StubService service;
  grpc::ServerBuilder builder;
  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::printf("stub stream server on %s\n", address.c_str());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  return 0;
}
