#include "worker/weights.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::worker {
namespace {

using Shape = std::vector<int64_t>;

absl::StatusOr<LayerWeights> LoadLayer(const model::Checkpoint& ckpt,
                                       const model::ModelConfig& c, int l) {
  const std::string p = absl::StrCat("model.layers.", l, ".");
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t q_rows = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_rows = int64_t{c.num_kv_heads} * c.head_dim;
  LayerWeights w;
  ASSIGN_OR_RETURN(w.attn_norm,
                   ckpt.ReadF32(p + "input_layernorm.weight", Shape{hidden}));
  ASSIGN_OR_RETURN(
      w.mlp_norm,
      ckpt.ReadF32(p + "post_attention_layernorm.weight", Shape{hidden}));
  ASSIGN_OR_RETURN(auto q, ckpt.ReadF32(p + "self_attn.q_proj.weight",
                                        Shape{q_rows, hidden}));
  ASSIGN_OR_RETURN(auto k, ckpt.ReadF32(p + "self_attn.k_proj.weight",
                                        Shape{kv_rows, hidden}));
  ASSIGN_OR_RETURN(auto v, ckpt.ReadF32(p + "self_attn.v_proj.weight",
                                        Shape{kv_rows, hidden}));
  const std::span<const float> qkv[] = {q, k, v};
  const int qkv_rows[] = {int(q_rows), int(kv_rows), int(kv_rows)};
  w.qkv = cpu::PackedMatrix::Concat(qkv, qkv_rows, int(hidden));
  if (c.attention_bias) {
    ASSIGN_OR_RETURN(auto qb,
                     ckpt.ReadF32(p + "self_attn.q_proj.bias", Shape{q_rows}));
    ASSIGN_OR_RETURN(auto kb,
                     ckpt.ReadF32(p + "self_attn.k_proj.bias", Shape{kv_rows}));
    ASSIGN_OR_RETURN(auto vb,
                     ckpt.ReadF32(p + "self_attn.v_proj.bias", Shape{kv_rows}));
    w.qkv_bias = std::move(qb);
    w.qkv_bias.insert(w.qkv_bias.end(), kb.begin(), kb.end());
    w.qkv_bias.insert(w.qkv_bias.end(), vb.begin(), vb.end());
  }
  ASSIGN_OR_RETURN(auto o, ckpt.ReadF32(p + "self_attn.o_proj.weight",
                                        Shape{hidden, q_rows}));
  w.o = cpu::PackedMatrix(o, int(hidden), int(q_rows));
  ASSIGN_OR_RETURN(auto gate, ckpt.ReadF32(p + "mlp.gate_proj.weight",
                                           Shape{inter, hidden}));
  ASSIGN_OR_RETURN(
      auto up, ckpt.ReadF32(p + "mlp.up_proj.weight", Shape{inter, hidden}));
  const std::span<const float> gate_up[] = {gate, up};
  const int gate_up_rows[] = {int(inter), int(inter)};
  w.gate_up = cpu::PackedMatrix::Concat(gate_up, gate_up_rows, int(hidden));
  ASSIGN_OR_RETURN(auto down, ckpt.ReadF32(p + "mlp.down_proj.weight",
                                           Shape{hidden, inter}));
  w.down = cpu::PackedMatrix(down, int(hidden), int(inter));
  return w;
}

}  // namespace

absl::StatusOr<ModelWeights> ModelWeights::Load(const model::Checkpoint& ckpt,
                                                const model::ModelConfig& c) {
  ModelWeights w;
  const int64_t vocab = c.vocab_size, hidden = c.hidden_size;
  ASSIGN_OR_RETURN(w.embedding, ckpt.ReadF32("model.embed_tokens.weight",
                                             Shape{vocab, hidden}));
  for (int l = 0; l < c.num_layers; ++l) {
    ASSIGN_OR_RETURN(auto layer, LoadLayer(ckpt, c, l));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm,
                   ckpt.ReadF32("model.norm.weight", Shape{hidden}));
  // Some tied checkpoints still ship lm_head.weight; untied ones must.
  if (!c.tie_word_embeddings || ckpt.Has("lm_head.weight")) {
    ASSIGN_OR_RETURN(auto head,
                     ckpt.ReadF32("lm_head.weight", Shape{vocab, hidden}));
    w.lm_head = cpu::PackedMatrix(head, int(vocab), int(hidden));
  } else {
    w.lm_head = cpu::PackedMatrix(w.embedding, int(vocab), int(hidden));
  }
  return w;
}

size_t ModelWeights::bytes() const {
  size_t total =
      (embedding.size() + final_norm.size()) * sizeof(float) + lm_head.bytes();
  for (const LayerWeights& l : layers) {
    total += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes() +
             (l.attn_norm.size() + l.mlp_norm.size() + l.qkv_bias.size()) *
                 sizeof(float);
  }
  return total;
}

}  // namespace hydra::worker
