#include "worker/weights.h"

#include <algorithm>
#include <initializer_list>
#include <span>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace hydra::worker {
namespace {

using Shape = std::vector<int64_t>;

absl::StatusOr<LayerWeights> LoadLayer(const model::Checkpoint& ckpt,
                                       const model::ModelConfig& c,
                                       const Shard& shard, int l,
                                       cpu::WeightType type,
                                       NonFiniteWeights& non_finite) {
  const std::string p = absl::StrCat("model.layers.", l, ".");
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size,
                hd = c.head_dim;
  const int64_t q_rows = int64_t{c.num_heads} * hd;
  const int64_t kv_rows = int64_t{c.num_kv_heads} * hd;
  // This rank's rows of Q and of K/V, its columns of o_proj, its features.
  const int64_t q0 = int64_t{shard.rank} * shard.heads(c) * hd;
  const int64_t q1 = q0 + int64_t{shard.heads(c)} * hd;
  const int64_t kv0 = int64_t{shard.rank} * shard.kv_heads(c) * hd;
  const int64_t kv1 = kv0 + int64_t{shard.kv_heads(c)} * hd;
  const int64_t f0 = int64_t{shard.rank} * shard.intermediate(c);
  const int64_t f1 = f0 + shard.intermediate(c);
  auto rows = [&](const std::string& name, Shape shape, int64_t r0,
                  int64_t r1) {
    return ckpt.Block(p + name, shape, r0, r1, 0,
                      shape.size() > 1 ? shape[1] : 1);
  };
  auto cols = [&](const std::string& name, Shape shape, int64_t c0,
                  int64_t c1) {
    return ckpt.Block(p + name, shape, 0, shape[0], c0, c1);
  };
  // The fp32 tensors (norms, biases) are counted here, the projections by
  // the packing pass.
  auto counted = [&](const std::string& name,
                     absl::StatusOr<std::vector<float>> values) {
    if (values.ok()) non_finite.Add(p + name, CountNonFinite(*values));
    return values;
  };
  auto bias = [&](const std::string& name, int64_t size, int64_t r0,
                  int64_t r1) {
    return counted(name,
                   ckpt.ReadF32Block(p + name, Shape{size}, r0, r1, 0, 1));
  };
  auto norm = [&](const std::string& name) {
    return counted(name, ckpt.ReadF32(p + name, Shape{hidden}));
  };
  // Packs `parts`, the tensors `names` in order.
  auto pack = [&](std::span<const model::TensorBlock> parts,
                  std::initializer_list<const char*> names) {
    const char* const* name = names.begin();
    return cpu::PackedMatrix::Pack(
        parts, type, 0, [&](const model::TensorBlock&, int64_t count) {
          non_finite.Add(p + *name++, count);
        });
  };

  LayerWeights w;
  ASSIGN_OR_RETURN(w.attn_norm, norm("input_layernorm.weight"));
  ASSIGN_OR_RETURN(w.mlp_norm, norm("post_attention_layernorm.weight"));
  ASSIGN_OR_RETURN(auto q,
                   rows("self_attn.q_proj.weight", {q_rows, hidden}, q0, q1));
  ASSIGN_OR_RETURN(
      auto k, rows("self_attn.k_proj.weight", {kv_rows, hidden}, kv0, kv1));
  ASSIGN_OR_RETURN(
      auto v, rows("self_attn.v_proj.weight", {kv_rows, hidden}, kv0, kv1));
  const model::TensorBlock qkv[] = {q, k, v};
  w.qkv = pack(qkv, {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                     "self_attn.v_proj.weight"});
  if (c.attention_bias) {
    ASSIGN_OR_RETURN(auto qb, bias("self_attn.q_proj.bias", q_rows, q0, q1));
    ASSIGN_OR_RETURN(auto kb, bias("self_attn.k_proj.bias", kv_rows, kv0, kv1));
    ASSIGN_OR_RETURN(auto vb, bias("self_attn.v_proj.bias", kv_rows, kv0, kv1));
    w.qkv_bias = std::move(qb);
    w.qkv_bias.insert(w.qkv_bias.end(), kb.begin(), kb.end());
    w.qkv_bias.insert(w.qkv_bias.end(), vb.begin(), vb.end());
  }
  ASSIGN_OR_RETURN(auto o,
                   cols("self_attn.o_proj.weight", {hidden, q_rows}, q0, q1));
  w.o = pack({&o, 1}, {"self_attn.o_proj.weight"});
  ASSIGN_OR_RETURN(auto gate,
                   rows("mlp.gate_proj.weight", {inter, hidden}, f0, f1));
  ASSIGN_OR_RETURN(auto up,
                   rows("mlp.up_proj.weight", {inter, hidden}, f0, f1));
  const model::TensorBlock gate_up[] = {gate, up};
  w.gate_up = pack(gate_up, {"mlp.gate_proj.weight", "mlp.up_proj.weight"});
  ASSIGN_OR_RETURN(auto down,
                   cols("mlp.down_proj.weight", {hidden, inter}, f0, f1));
  w.down = pack({&down, 1}, {"mlp.down_proj.weight"});
  for (const char* name :
       {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight",
        "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}) {
    ckpt.Release(p + name);
  }
  return w;
}

// Packs a vocabulary-sized tensor (`name`) in row chunks of about 16 MB,
// dropping each chunk's source pages once packed: the largest tensor then
// never sits in memory twice over.
cpu::PackedMatrix PackVocabulary(const model::TensorBlock& table,
                                 const std::string& name, cpu::WeightType type,
                                 int min_rows, NonFiniteWeights& non_finite) {
  const int64_t row_bytes =
      std::max<int64_t>(1, table.cols * model::DTypeSize(table.dtype));
  const int64_t chunk = std::max<int64_t>(cpu::PackedMatrix::kPanel,
                                          (int64_t{16} << 20) / row_bytes /
                                              cpu::PackedMatrix::kPanel *
                                              cpu::PackedMatrix::kPanel);
  std::vector<model::TensorBlock> parts;
  for (int64_t r = 0; r < table.rows; r += chunk) {
    model::TensorBlock part = table;
    part.data += r * table.row_stride * model::DTypeSize(table.dtype);
    part.rows = std::min(chunk, table.rows - r);
    parts.push_back(part);
  }
  return cpu::PackedMatrix::Pack(
      parts, type, min_rows,
      [&](const model::TensorBlock& part, int64_t count) {
        model::Checkpoint::Release(part);
        non_finite.Add(name, count);
      });
}

}  // namespace

absl::Status Shard::Check(const model::ModelConfig& c, int size) {
  if (size >= 1 && c.num_heads % size == 0 && c.num_kv_heads % size == 0 &&
      c.intermediate_size % size == 0) {
    return absl::OkStatus();
  }
  std::vector<int> ok;
  for (int n = 1; n <= c.num_heads; ++n) {
    if (c.num_heads % n == 0 && c.num_kv_heads % n == 0 &&
        c.intermediate_size % n == 0) {
      ok.push_back(n);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "tensor-parallel size ", size, " does not divide the model's ",
      c.num_heads, " attention heads, ", c.num_kv_heads, " KV heads and ",
      c.intermediate_size,
      " intermediate features; sizes that work: ", absl::StrJoin(ok, ", ")));
}

absl::StatusOr<ModelWeights> ModelWeights::Load(const model::Checkpoint& ckpt,
                                                const model::ModelConfig& c,
                                                const Shard& shard,
                                                cpu::WeightType type) {
  RETURN_IF_ERROR(Shard::Check(c, shard.size));
  ModelWeights w;
  const int64_t vocab = c.vocab_size, hidden = c.hidden_size;
  const int64_t v0 = shard.vocab_begin(c), v1 = shard.vocab_end(c);
  ASSIGN_OR_RETURN(const model::TensorBlock embedding,
                   ckpt.Block("model.embed_tokens.weight", Shape{vocab, hidden},
                              v0, v1, 0, hidden));
  // A config with fewer layers than the checkpoint would serve a different
  // (truncated) model without a word.
  if (auto extra = ckpt.FirstWithPrefix(
          absl::StrCat("model.layers.", c.num_layers, "."))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the checkpoint has tensor \"", *extra, "\" beyond the ", c.num_layers,
        " layers of config.json's num_hidden_layers"));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    ASSIGN_OR_RETURN(auto layer,
                     LoadLayer(ckpt, c, shard, l, type, w.non_finite));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm,
                   ckpt.ReadF32("model.norm.weight", Shape{hidden}));
  w.non_finite.Add("model.norm.weight", CountNonFinite(w.final_norm));
  // Each rank's classifier has vocab_per_rank rows; the last may be padded
  // with zero rows, whose logits are dropped when gathered.
  const int padded = shard.vocab_per_rank(c);
  // Some tied checkpoints still ship lm_head.weight; untied ones must. A
  // tied model's classifier is its embedding, packed once for both uses.
  if (!c.tie_word_embeddings || ckpt.Has("lm_head.weight")) {
    ASSIGN_OR_RETURN(
        const model::TensorBlock head,
        ckpt.Block("lm_head.weight", Shape{vocab, hidden}, v0, v1, 0, hidden));
    w.lm_head =
        PackVocabulary(head, "lm_head.weight", type, padded, w.non_finite);
    w.embedding = PackVocabulary(embedding, "model.embed_tokens.weight", type,
                                 0, w.non_finite);
  } else {
    w.lm_head = PackVocabulary(embedding, "model.embed_tokens.weight", type,
                               padded, w.non_finite);
  }
  return w;
}

size_t ModelWeights::bytes() const {
  size_t total =
      embedding.bytes() + final_norm.size() * sizeof(float) + lm_head.bytes();
  for (const LayerWeights& l : layers) {
    total += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes() +
             (l.attn_norm.size() + l.mlp_norm.size() + l.qkv_bias.size()) *
                 sizeof(float);
  }
  return total;
}

}  // namespace hydra::worker
