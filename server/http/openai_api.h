// The OpenAI-compatible routes over one engine: /v1/completions,
// /v1/chat/completions, /v1/models, /health, /version, /tokenize,
// /detokenize. Handle() fits HttpServer's Handler: it authenticates, parses
// and validates (with the validator the gRPC front end uses), then hands the
// request to a Generation (generation.h).
#ifndef HYDRA_SERVER_HTTP_OPENAI_API_H_
#define HYDRA_SERVER_HTTP_OPENAI_API_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "nlohmann/json.hpp"
#include "server/http/generation.h"
#include "server/http/http_server.h"

namespace hydra::server::http {

// Renders chat messages ([{role, content}], content a string) into the
// model's prompt text.
using ChatFormatter = std::function<absl::StatusOr<std::string>(
    const nlohmann::ordered_json& messages, bool add_generation_prompt)>;

struct OpenAiApiOptions {
  std::string model_name;
  std::string api_key;  // empty: no authentication
  std::string version;
  // nullptr: the model has no chat template (chat requests get 400).
  ChatFormatter chat_formatter;
  // The BOS token's text as a template writes it (e.g. "<s>"): a rendered
  // prompt that starts with it is tokenized with one BOS id, not two.
  std::string bos_text;
  // Sees every refused request, with the status it was refused with.
  RejectionObserver on_rejected;
};

class OpenAiApi {
 public:
  OpenAiApi(OpenAiApiOptions options, OutputObserver observer);

  // Until an engine is attached (the model is loading) and after draining
  // starts, requests are refused with 503 and /health answers 503.
  void AttachEngine(engine::Engine* engine) { engine_.store(engine); }
  void StartDraining() { draining_.store(true); }

  // Called on the connection's strand.
  void Handle(HttpRequest request, std::shared_ptr<Responder> responder);

 private:
  class Call;  // one request being answered

  OpenAiApiOptions options_;
  OutputObserver observer_;
  const int64_t created_;
  std::atomic<engine::Engine*> engine_{nullptr};
  std::atomic<bool> draining_{false};
};

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_OPENAI_API_H_
