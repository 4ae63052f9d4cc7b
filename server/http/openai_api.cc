#include "server/http/openai_api.h"

#include <algorithm>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/api_key.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/openai_request.h"
#include "server/http/openai_response.h"
#include "server/http/warm_prefix.h"
#include "server/request_validation.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kJson[] = "application/json";

// How OpenAI spells the validator's fields (the defaults), and for chat,
// where the prompt comes from.
constexpr server::FieldNames kCompletionNames{
    .request_id = "id",
    .prompt = "prompt",
    .prompt_token_ids = "prompt",
    .input = "prompt",
    .temperature = "temperature",
    .top_k = "top_k",
    .top_p = "top_p",
    .min_p = "min_p",
    .repetition_penalty = "repetition_penalty",
    .presence_penalty = "presence_penalty",
    .frequency_penalty = "frequency_penalty",
    .logprobs = "logprobs",
    .max_tokens = "max_tokens",
    .min_tokens = "min_tokens",
    .stop = "stop",
    .stop_token_ids = "stop_token_ids",
    .priority = "priority",
    .retention = "retention",
};

server::FieldNames ChatNames(std::string_view max_tokens) {
  server::FieldNames names = kCompletionNames;
  names.prompt = "messages";
  names.prompt_token_ids = "messages";
  names.logprobs = "top_logprobs";
  names.max_tokens = max_tokens;
  return names;
}

struct Route {
  std::string_view path;
  std::string_view method;
  bool needs_key;
};

constexpr Route kRoutes[] = {
    {"/v1/completions", "POST", true}, {"/v1/chat/completions", "POST", true},
    {"/v1/models", "GET", true},       {"/tokenize", "POST", true},
    {"/detokenize", "POST", true},     {"/v1/warm_prefix", "POST", true},
    {"/health", "GET", false},         {"/version", "GET", false},
};

}  // namespace

// Everything one request needs; lives on the connection's strand for the
// duration of Handle.
class OpenAiApi::Call {
 public:
  Call(OpenAiApi& api, HttpRequest request,
       std::shared_ptr<Responder> responder)
      : api_(api),
        request_(std::move(request)),
        responder_(std::move(responder)) {}

  void Run() {
    const Route* route = nullptr;
    bool path_known = false;
    std::string_view path = request_.path;
    const bool model_path = path.starts_with("/v1/models/");
    for (const Route& r : kRoutes) {
      if (r.path != path && !(model_path && r.path == "/v1/models")) continue;
      path_known = true;
      if (r.method == request_.method) route = &r;
    }
    if (!path_known) {
      return Error(ApiError{404, absl::StrCat("no such path: ", request_.path),
                            "invalid_request_error", "", "not_found"});
    }
    if (route == nullptr) {
      return Error(ApiError{405,
                            absl::StrCat("method ", request_.method,
                                         " is not allowed on ", request_.path),
                            "invalid_request_error", "", "method_not_allowed"},
                   {{"Allow", AllowedMethods(path, model_path)}});
    }
    if (route->needs_key && !Authorized()) {
      return Error(ApiError{401,
                            "missing or wrong API key: send 'Authorization: "
                            "Bearer <key>'",
                            "authentication_error", "", "invalid_api_key"},
                   {{"WWW-Authenticate", "Bearer"}});
    }
    if (path == "/version") {
      return Ok(Json{{"version", api_.options_.version}});
    }
    engine::Engine* engine = nullptr;
    if (absl::Status s = Admit(&engine); !s.ok()) return Error(FromStatus(s));
    engine_ = engine;
    if (path == "/health") {
      return responder_->Respond(200, "", "");
    }
    if (route->path == "/v1/models") return Models(model_path);

    // POST routes: a JSON object body.
    if (const std::string type =
            absl::AsciiStrToLower(std::string(request_.Header("content-type")));
        !type.empty() && type.find("json") == std::string::npos &&
        type.find("x-www-form-urlencoded") == std::string::npos) {
      return Error(ApiError{415,
                            absl::StrCat("Content-Type ", std::string(type),
                                         " is not supported: send "
                                         "application/json"),
                            "invalid_request_error", "", ""});
    }
    absl::StatusOr<Json> body = ParseJsonObject(request_.body);
    if (!body.ok()) return Error(FromStatus(body.status()));
    if (path == "/v1/completions") return Completion(*body);
    if (path == "/v1/chat/completions") return Chat(*body);
    if (path == "/tokenize") return Tokenize(*body);
    if (path == "/v1/warm_prefix") return WarmPrefix(*body);
    return Detokenize(*body);
  }

 private:
  static std::string AllowedMethods(std::string_view path, bool model_path) {
    std::string allowed;
    for (const Route& r : kRoutes) {
      if (r.path == path || (model_path && r.path == "/v1/models")) {
        if (!allowed.empty()) allowed += ", ";
        allowed += r.method;
      }
    }
    return allowed;
  }

  bool Authorized() const {
    return AuthorizationMatches(request_.Header("authorization"),
                                api_.options_.api_key);
  }

  absl::Status Admit(engine::Engine** engine) const {
    if (api_.draining_.load()) {
      return absl::UnavailableError("the server is shutting down");
    }
    *engine = api_.engine_.load();
    if (*engine == nullptr) {
      return absl::UnavailableError("the model is still loading");
    }
    return absl::OkStatus();
  }

  // 404 model_not_found unless `model` is unset or the served model.
  bool CheckModel(const std::optional<std::string>& model) {
    if (!model.has_value() || *model == api_.options_.model_name) return true;
    Error(ApiError{404,
                   absl::StrCat("the model '", *model,
                                "' does not exist; this server serves '",
                                api_.options_.model_name, "'"),
                   "invalid_request_error", "model", "model_not_found"});
    return false;
  }

  void Models(bool one) {
    Json model;
    model["id"] = api_.options_.model_name;
    model["object"] = "model";
    model["created"] = api_.created_;
    model["owned_by"] = "hydra";
    model["root"] = api_.options_.model_name;
    model["parent"] = nullptr;
    model["max_model_len"] = engine_->config().max_model_len;
    if (one) {
      const std::string id = request_.path.substr(sizeof("/v1/models/") - 1);
      if (!CheckModel(id)) return;
      return Ok(model);
    }
    Ok(Json{{"object", "list"}, {"data", Json::array({std::move(model)})}});
  }

  // A completion-shaped body parsed, its model checked and its fields
  // validated; nullopt once the error is answered.
  struct ValidCompletion {
    OpenAiRequest parsed;
    engine::EngineRequest request;
  };
  std::optional<ValidCompletion> ParseValidCompletion(const Json& body) {
    absl::StatusOr<OpenAiRequest> parsed = ParseCompletionRequest(body);
    if (!parsed.ok()) {
      Error(FromStatus(parsed.status()));
      return std::nullopt;
    }
    if (!CheckModel(parsed->model)) return std::nullopt;
    absl::StatusOr<engine::EngineRequest> request =
        Validate(parsed->fields, kCompletionNames);
    if (!request.ok()) {
      Error(FromStatus(request.status()));
      return std::nullopt;
    }
    return ValidCompletion{*std::move(parsed), *std::move(request)};
  }

  void Completion(const Json& body) {
    std::optional<ValidCompletion> valid = ParseValidCompletion(body);
    if (!valid.has_value()) return;
    auto& [parsed, request] = *valid;
    if (!parsed.max_tokens_set) {
      // OpenAI's default for this endpoint, within what the context allows.
      request.stopping.max_tokens = std::max(
          std::min(kDefaultCompletionMaxTokens, request.stopping.max_tokens),
          request.stopping.min_tokens);
    }
    Generate(parsed, std::move(request), /*chat=*/false);
  }

  void Chat(const Json& body) {
    absl::StatusOr<OpenAiRequest> parsed = ParseChatRequest(body);
    if (!parsed.ok()) return Error(FromStatus(parsed.status()));
    if (!CheckModel(parsed->model)) return;
    absl::StatusOr<server::PromptText> prompt =
        ChatPrompt(parsed->messages, parsed->add_generation_prompt);
    if (!prompt.ok()) return Error(FromStatus(prompt.status()));
    parsed->fields.prompt = *std::move(prompt);
    absl::StatusOr<engine::EngineRequest> request =
        Validate(parsed->fields, ChatNames(parsed->max_tokens_name));
    if (!request.ok()) return Error(FromStatus(request.status()));
    Generate(*parsed, *std::move(request), /*chat=*/true);
  }

  void Generate(const OpenAiRequest& parsed, engine::EngineRequest request,
                bool chat) {
    GenerationSpec spec;
    spec.chat = chat;
    spec.n = parsed.n;
    spec.stream = parsed.stream;
    spec.include_usage = parsed.stream && parsed.include_usage;
    spec.logprobs = request.sampling.logprobs.has_value();
    spec.model_name = api_.options_.model_name;
    if (absl::Status s = StartGeneration(engine_, request, std::move(spec),
                                         responder_, api_.observer_);
        !s.ok()) {
      CountRejection(s.code());
    }
  }

  // As a completion's prompt (`prompt`, `priority`, `retention`), prefilled
  // only.
  void WarmPrefix(const Json& body) {
    std::optional<ValidCompletion> valid = ParseValidCompletion(body);
    if (!valid.has_value()) return;
    if (absl::Status s = StartWarmPrefix(engine_, std::move(valid->request),
                                         responder_, api_.observer_);
        !s.ok()) {
      CountRejection(s.code());
    }
  }

  absl::StatusOr<engine::EngineRequest> Validate(
      const server::RequestFields& fields,
      const server::FieldNames& names) const {
    return server::ValidateRequest(fields, names, engine_->model_config(),
                                   engine_->tokenizer(),
                                   engine_->config().max_model_len);
  }

  // The prompt the chat template makes of `messages`: to be tokenized with
  // one BOS when the template writes it and none otherwise (as Hugging
  // Face's apply_chat_template does).
  absl::StatusOr<server::PromptText> ChatPrompt(const Json& messages,
                                                bool add_generation_prompt) {
    const ChatFormatter& format = api_.options_.chat_formatter;
    if (!format) {
      return absl::InvalidArgumentError(
          "this model has no chat template, so chat completions are not "
          "available: use /v1/completions, or start the server with "
          "--chat_template=FILE");
    }
    absl::StatusOr<std::string> text = format(messages, add_generation_prompt);
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "messages: the chat template failed: ", text.status().message()));
    }
    const std::string& bos = api_.options_.bos_text;
    if (!bos.empty() && text->starts_with(bos)) {
      return server::PromptText{text->substr(bos.size()), /*add_bos=*/true};
    }
    return server::PromptText{*std::move(text), /*add_bos=*/false};
  }

  void Tokenize(const Json& body) {
    absl::StatusOr<TokenizeRequest> parsed = ParseTokenizeRequest(body);
    if (!parsed.ok()) return Error(FromStatus(parsed.status()));
    if (!CheckModel(parsed->model)) return;
    absl::StatusOr<std::vector<int>> ids;
    if (parsed->prompt.has_value()) {
      if (!server::IsValidUtf8(*parsed->prompt)) {
        return Error(InvalidField("prompt", "prompt: is not valid UTF-8"));
      }
      ids = engine_->tokenizer().Encode(*parsed->prompt,
                                        parsed->add_special_tokens);
    } else {
      absl::StatusOr<server::PromptText> prompt =
          ChatPrompt(parsed->messages, parsed->add_generation_prompt);
      if (!prompt.ok()) return Error(FromStatus(prompt.status()));
      if (!server::IsValidUtf8(prompt->text)) {
        return Error(InvalidField(
            "messages", "messages: the rendered prompt is not valid UTF-8"));
      }
      ids = engine_->tokenizer().Encode(prompt->text, prompt->add_bos);
    }
    if (!ids.ok()) return Error(FromStatus(ids.status()));
    Json out;
    out["count"] = ids->size();
    out["max_model_len"] = engine_->config().max_model_len;
    out["tokens"] = *ids;
    Ok(out);
  }

  void Detokenize(const Json& body) {
    absl::StatusOr<DetokenizeRequest> parsed = ParseDetokenizeRequest(body);
    if (!parsed.ok()) return Error(FromStatus(parsed.status()));
    if (!CheckModel(parsed->model)) return;
    const int vocab = engine_->model_config().vocab_size;
    for (size_t i = 0; i < parsed->tokens.size(); ++i) {
      const int id = parsed->tokens[i];
      if (id < 0 || id >= vocab) {
        return Error(InvalidField(
            absl::StrCat("tokens[", i, "]"),
            absl::StrCat("tokens[", i, "]: ", id,
                         " is outside the vocabulary [0, ", vocab, ")")));
      }
    }
    absl::StatusOr<std::string> text =
        engine_->tokenizer().Decode(parsed->tokens);
    if (!text.ok()) {
      return Error(FromStatus(absl::InvalidArgumentError(
          absl::StrCat("tokens: ", text.status().message()))));
    }
    Ok(Json{{"prompt", *text}});
  }

  void Ok(const Json& body) { responder_->Respond(200, kJson, Dump(body)); }
  // Every error answered here refuses the request before the engine has it.
  void Error(const ApiError& e, Headers extra = {}) {
    CountRejection(StatusCodeOf(e));
    responder_->Respond(e.status, kJson, ErrorBody(e), std::move(extra));
  }
  void CountRejection(absl::StatusCode code) const {
    if (api_.options_.on_rejected) api_.options_.on_rejected(code);
  }

  OpenAiApi& api_;
  HttpRequest request_;
  std::shared_ptr<Responder> responder_;
  engine::Engine* engine_ = nullptr;
};

OpenAiApi::OpenAiApi(OpenAiApiOptions options, OutputObserver observer)
    : options_(std::move(options)),
      observer_(std::move(observer)),
      created_(UnixSeconds()) {}

void OpenAiApi::Handle(HttpRequest request,
                       std::shared_ptr<Responder> responder) {
  Call(*this, std::move(request), std::move(responder)).Run();
}

}  // namespace hydra::server::http
