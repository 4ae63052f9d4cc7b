#include "server/http/warm_prefix.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/http/errors.h"
#include "server/http/json_util.h"

namespace hydra::server::http {

absl::Status StartWarmPrefix(engine::Engine* engine,
                             engine::EngineRequest request,
                             std::shared_ptr<Responder> responder,
                             const OutputObserver& observer) {
  request.prefill_only = true;
  auto id = engine->Submit(std::move(request), [engine, responder, observer](
                                                   engine::EngineOutput out) {
    if (observer) observer(out, absl::InfinitePast());
    if (!out.finished) return;
    responder->Post([engine, responder, out = std::move(out)] {
      if (out.finish_reason != engine::FinishReason::kLength) {
        const ApiError e = FromStatus(absl::UnavailableError(absl::StrCat(
            "the warm-up was stopped (",
            std::string(engine::FinishReasonName(out.finish_reason)),
            out.error.empty() ? "" : ": " + out.error, ")")));
        responder->Respond(e.status, "application/json", ErrorBody(e));
        return;
      }
      const int prompt = out.usage.prompt_tokens;
      nlohmann::ordered_json body = {
          {"object", "warm_prefix"},
          {"prompt_tokens", prompt},
          {"cached_tokens", engine->PrefixCachedTokens(prompt)},
          {"reused_tokens", out.usage.cached_prompt_tokens}};
      responder->Respond(200, "application/json", Dump(body));
    });
  });
  if (!id.ok()) {
    const ApiError e = FromStatus(id.status());
    responder->Respond(e.status, "application/json", ErrorBody(e));
    return id.status();
  }
  // A client that leaves stops the warm-up.
  responder->OnAbort([engine, id = *id] { engine->Cancel(id); });
  return absl::OkStatus();
}

}  // namespace hydra::server::http
