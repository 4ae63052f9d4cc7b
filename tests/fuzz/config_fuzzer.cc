// config.json from untrusted bytes. What ParseModelConfig accepts must be a
// shape the engine can serve (the bounds of model/config.h hold) and must
// survive a round trip through ModelConfigToJson, which the llama2.c
// converter and the synthetic models write configs with.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  using model::ModelConfig;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = model::ParseModelConfig(text, "config.json");
  if (!config.ok()) return 0;
  const ModelConfig& c = *config;
  HYDRA_FUZZ_CHECK(c.hidden_size >= 1 &&
                   c.hidden_size <= model::kMaxHiddenSize);
  HYDRA_FUZZ_CHECK(c.num_layers >= 1 && c.num_layers <= model::kMaxLayers);
  HYDRA_FUZZ_CHECK(c.num_kv_heads >= 1 && c.num_heads % c.num_kv_heads == 0);
  HYDRA_FUZZ_CHECK(c.head_dim >= 2 && c.head_dim % 2 == 0 &&
                   c.head_dim <= model::kMaxHeadDim);
  HYDRA_FUZZ_CHECK(c.vocab_size >= 1 && c.vocab_size <= model::kMaxVocabSize);
  // Kernels divide by sqrt(mean + eps) and raise theta to powers: both must
  // be positive and finite as the floats the engine uses.
  HYDRA_FUZZ_CHECK(c.rms_norm_eps > 0 && std::isfinite(c.rms_norm_eps));
  HYDRA_FUZZ_CHECK(c.rope_theta > 0 && std::isfinite(c.rope_theta));
  HYDRA_FUZZ_CHECK(c.bos_token_id >= -1 && c.bos_token_id < c.vocab_size);
  for (int id : c.eos_token_ids) {
    HYDRA_FUZZ_CHECK(id >= 0 && id < c.vocab_size);
  }

  const std::string json = model::ModelConfigToJson(c);
  auto again = model::ParseModelConfig(json, "round trip");
  HYDRA_FUZZ_CHECK(again.ok(), again.status());
  HYDRA_FUZZ_CHECK(model::ModelConfigToJson(*again) == json, json);
  return 0;
}
