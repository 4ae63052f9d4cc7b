#include "model/llama2c_converter.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

namespace hydra::model {
namespace {

namespace fs = std::filesystem;

// llama2.c's header: seven int32 values, in this order.
struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// Reorders each head's rows from interleaved pairs to rotate-half: the row
// at 2i + h (h = 0, 1) moves to h * head_dim/2 + i.
std::vector<float> PermuteForRotateHalf(std::span<const float> w, int heads,
                                        int head_dim, int cols) {
  std::vector<float> out(w.size());
  const int half = head_dim / 2;
  for (int head = 0; head < heads; ++head) {
    for (int i = 0; i < half; ++i) {
      for (int h = 0; h < 2; ++h) {
        const size_t src = size_t(head * head_dim + 2 * i + h) * cols;
        const size_t dst = size_t(head * head_dim + h * half + i) * cols;
        std::memcpy(&out[dst], &w[src], sizeof(float) * cols);
      }
    }
  }
  return out;
}

}  // namespace

absl::Status ConvertLlama2c(const fs::path& model_bin,
                            const fs::path& tokenizer_model,
                            const fs::path& out_dir,
                            const Llama2cConvertOptions& options) {
  ASSIGN_OR_RETURN(const std::string bytes, ReadFile(model_bin));
  Llama2cHeader h;
  if (bytes.size() < sizeof(h)) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_bin.string(), ": shorter than the 28-byte header"));
  }
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 ||
      h.n_kv_heads <= 0 || h.vocab_size == 0 || h.seq_len <= 0 ||
      h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 ||
      (h.dim / h.n_heads) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_bin.string(), ": header is not a llama2.c model (dim=", h.dim,
        " hidden_dim=", h.hidden_dim, " n_layers=", h.n_layers,
        " n_heads=", h.n_heads, " n_kv_heads=", h.n_kv_heads,
        " vocab_size=", h.vocab_size, " seq_len=", h.seq_len, ")"));
  }
  const bool tied = h.vocab_size > 0;
  const int64_t vocab = tied ? h.vocab_size : -int64_t{h.vocab_size};
  const int64_t dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers;
  const int64_t head_dim = dim / h.n_heads;
  const int64_t kv_dim = head_dim * h.n_kv_heads;

  // Tensors in file order, with their Hugging Face names per layer.
  struct Block {
    std::string hf_name;  // "{}" is the layer index
    std::vector<int64_t> shape;
    bool per_layer;
  };
  const std::vector<Block> blocks = {
      {"model.embed_tokens.weight", {vocab, dim}, false},
      {"model.layers.{}.input_layernorm.weight", {dim}, true},
      {"model.layers.{}.self_attn.q_proj.weight", {dim, dim}, true},
      {"model.layers.{}.self_attn.k_proj.weight", {kv_dim, dim}, true},
      {"model.layers.{}.self_attn.v_proj.weight", {kv_dim, dim}, true},
      {"model.layers.{}.self_attn.o_proj.weight", {dim, dim}, true},
      {"model.layers.{}.post_attention_layernorm.weight", {dim}, true},
      {"model.layers.{}.mlp.gate_proj.weight", {hidden, dim}, true},
      {"model.layers.{}.mlp.down_proj.weight", {dim, hidden}, true},
      {"model.layers.{}.mlp.up_proj.weight", {hidden, dim}, true},
      {"model.norm.weight", {dim}, false},
  };
  const int64_t rope_tables =
      int64_t{h.seq_len} * head_dim;  // cos + sin halves
  int64_t floats = 0;
  for (const Block& b : blocks) {
    int64_t n = 1;
    for (int64_t d : b.shape) n *= d;
    floats += b.per_layer ? n * layers : n;
  }
  const int64_t classifier = tied ? 0 : vocab * dim;
  const int64_t expected = int64_t(sizeof(h)) + 4 * (floats + classifier);
  const int64_t expected_legacy = expected + 4 * rope_tables;
  const int64_t actual = static_cast<int64_t>(bytes.size());
  if (actual != expected && actual != expected_legacy) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_bin.string(), ": size ", actual,
        " bytes does not match its header (", expected, " bytes, or ",
        expected_legacy, " with the legacy RoPE tables)"));
  }

  const float* cursor =
      reinterpret_cast<const float*>(bytes.data() + sizeof(h));
  // Owned copies: permuted Q/K rows must outlive the TensorToWrite spans.
  std::vector<std::vector<float>> owned;
  owned.reserve(blocks.size() * layers + 2);
  std::vector<TensorToWrite> tensors;
  for (const Block& b : blocks) {
    int64_t n = 1;
    for (int64_t d : b.shape) n *= d;
    const int64_t copies = b.per_layer ? layers : 1;
    for (int64_t l = 0; l < copies; ++l) {
      std::span<const float> src(cursor, n);
      cursor += n;
      std::string name = b.hf_name;
      if (b.per_layer) name.replace(name.find("{}"), 2, std::to_string(l));
      const bool is_q = name.ends_with("q_proj.weight");
      const bool is_k = name.ends_with("k_proj.weight");
      if (is_q || is_k) {
        const int heads = is_q ? h.n_heads : h.n_kv_heads;
        owned.push_back(PermuteForRotateHalf(src, heads, head_dim, dim));
        src = owned.back();
      }
      tensors.push_back({name, b.shape, src});
    }
  }
  if (!tied) {
    if (actual == expected_legacy) cursor += rope_tables;
    tensors.push_back(
        {"lm_head.weight", {vocab, dim}, {cursor, size_t(vocab * dim)}});
  }

  ModelConfig config;
  config.architecture = "LlamaForCausalLM";
  config.model_type = "llama";
  config.hidden_size = h.dim;
  config.intermediate_size = h.hidden_dim;
  config.num_layers = h.n_layers;
  config.num_heads = h.n_heads;
  config.num_kv_heads = h.n_kv_heads;
  config.head_dim = static_cast<int>(head_dim);
  config.vocab_size = static_cast<int>(vocab);
  config.max_position_embeddings = h.seq_len;
  config.rms_norm_eps = options.rms_norm_eps;
  config.rope_theta = options.rope_theta;
  config.tie_word_embeddings = tied;
  config.bos_token_id = options.bos_token_id;
  config.eos_token_ids = {options.eos_token_id};

  ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(tokenizer_model));
  if (tokenizer->vocab_size() != config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        tokenizer_model.string(), ": tokenizer has ", tokenizer->vocab_size(),
        " pieces but ", model_bin.string(), " has vocab_size ", vocab));
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", out_dir.string(), ": ", ec.message()));
  }
  RETURN_IF_ERROR(WriteSafetensors(out_dir / "model.safetensors", tensors));
  RETURN_IF_ERROR(
      WriteText(out_dir / "config.json", ModelConfigToJson(config)));
  RETURN_IF_ERROR(WriteText(out_dir / "generation_config.json",
                            GenerationConfigToJson(config)));
  fs::copy_file(tokenizer_model, out_dir / "tokenizer.model",
                fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(
        "cannot copy ", tokenizer_model.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace hydra::model
