// Writes a Llama-shaped model folder with random weights, for timing models
// larger than the default one (e.g. ~1.1B parameters: the TinyLlama shape,
// the default flags). The numbers it produces are meaningless; its speed is
// not. Usage: hydra_make_synthetic_model --out=DIR
// --tokenizer=models/stories15M/tokenizer.model
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "model/config.h"
#include "model/safetensors.h"

ABSL_FLAG(std::string, out, "", "Folder to write");
ABSL_FLAG(std::string, tokenizer, "models/stories15M/tokenizer.model",
          "SentencePiece model to copy (its vocabulary size is used)");
ABSL_FLAG(int, hidden, 2048, "hidden_size");
ABSL_FLAG(int, layers, 22, "num_hidden_layers");
ABSL_FLAG(int, heads, 32, "num_attention_heads");
ABSL_FLAG(int, kv_heads, 4, "num_key_value_heads");
ABSL_FLAG(int, intermediate, 5632, "intermediate_size");
ABSL_FLAG(int, vocab, 32000, "vocab_size");
ABSL_FLAG(int, max_positions, 2048, "max_position_embeddings");

namespace {

// Uniform in [-scale, scale) from a xorshift generator: fast enough for a
// billion values, and the distribution does not matter for timing.
void Fill(std::vector<float>& v, uint64_t& state, float scale) {
  for (float& x : v) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    x = scale * (static_cast<float>(state >> 40) / float(1 << 23) - 1.0f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::filesystem::path out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "--out is required\n");
    return 2;
  }
  hydra::model::ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = absl::GetFlag(FLAGS_hidden);
  c.num_layers = absl::GetFlag(FLAGS_layers);
  c.num_heads = absl::GetFlag(FLAGS_heads);
  c.num_kv_heads = absl::GetFlag(FLAGS_kv_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  c.intermediate_size = absl::GetFlag(FLAGS_intermediate);
  c.vocab_size = absl::GetFlag(FLAGS_vocab);
  c.max_position_embeddings = absl::GetFlag(FLAGS_max_positions);
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};

  const int64_t h = c.hidden_size, q = int64_t{c.num_heads} * c.head_dim,
                kv = int64_t{c.num_kv_heads} * c.head_dim,
                f = c.intermediate_size, v = c.vocab_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"model.embed_tokens.weight", {v, h}},
      {"model.norm.weight", {h}},
      {"lm_head.weight", {v, h}}};
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    shapes.push_back({p + "input_layernorm.weight", {h}});
    shapes.push_back({p + "post_attention_layernorm.weight", {h}});
    shapes.push_back({p + "self_attn.q_proj.weight", {q, h}});
    shapes.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    shapes.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    shapes.push_back({p + "self_attn.o_proj.weight", {h, q}});
    shapes.push_back({p + "mlp.gate_proj.weight", {f, h}});
    shapes.push_back({p + "mlp.up_proj.weight", {f, h}});
    shapes.push_back({p + "mlp.down_proj.weight", {h, f}});
  }
  std::vector<std::vector<float>> data;
  data.reserve(shapes.size());
  std::vector<hydra::model::TensorToWrite> tensors;
  uint64_t state = 0x9e3779b97f4a7c15ull, params = 0;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.emplace_back(n);
    if (shape.size() == 1) {
      std::fill(data.back().begin(), data.back().end(), 1.0f);  // norms
    } else {
      Fill(data.back(), state, 0.02f);
    }
    tensors.push_back({name, shape, data.back()});
    params += n;
  }
  std::filesystem::create_directories(out);
  if (auto s =
          hydra::model::WriteSafetensors(out / "model.safetensors", tensors);
      !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::ofstream(out / "config.json") << hydra::model::ModelConfigToJson(c);
  std::ofstream(out / "generation_config.json")
      << hydra::model::GenerationConfigToJson(c);
  std::filesystem::copy_file(absl::GetFlag(FLAGS_tokenizer),
                             out / "tokenizer.model",
                             std::filesystem::copy_options::overwrite_existing);
  std::printf("wrote %s: %.2fB parameters, %.1f GB fp32\n", out.c_str(),
              params / 1e9, params * 4 / 1e9);
  return 0;
}
