#include "bench/synthetic_weights.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace hydra::bench {
namespace {

// The scales, as a function of the shape, chosen for a trained-looking
// forward pass whatever the size:
//
// - q and k rows get std kQkGain / sqrt(fan_in). The RMSNorm before them
//   gives unit-RMS inputs, so q and k entries have std kQkGain and the
//   scaled scores q.k / sqrt(head_dim) have std kQkGain^2 = 2: softmax
//   weights that differ by e^±4 across a context, neither uniform nor
//   one-hot.
// - The attention and MLP outputs (o_proj, down_proj) together make a
//   residual of RMS ~kResidualRms at the last layer, whatever the depth
//   (each of the 2 * layers branches adds variance kResidualRms^2 / (2 *
//   layers)). The residual is then large next to an embedding row, as in
//   trained models: with tied embeddings a small residual would leave the
//   current token's own embedding dominant after the final norm, and greedy
//   decoding would repeat it forever.
// - Embedding rows get std kLogitStd / sqrt(hidden): after the final norm
//   (unit RMS) the logits have std ~kLogitStd, so the top two of a 150k
//   vocabulary are typically ~1 apart, ten thousand times the fp32 noise
//   (~1e-4) the reference test measures.
// - Norm weights are 1 ± a few percent, biases small: they must matter (a
//   loader that skipped them would fail the reference test) without
//   changing the scales above.
//
// Measured (tests/reference/llama_reference.py --stats, 28 random tokens;
// score std and spread (max - min) are over each query's causal keys,
// averaged, so short early rows pull them below the design value):
//
//                         scores       residual  logits      top-2 gap
//                         std  spread  RMS       std   max   mean  min
//   qwen2.5-0.5b          1.53 5.5     14.4      6.00  26.7  1.29  0.12
//   llama3.2-1b           1.61 5.8     13.9      6.01  27.0  1.52  0.05
//   the reference test's 2-layer Qwen and 3-layer, 512-wide Llama:
//   qwen2.5-0.5b-2l       1.75 6.3     13.7      6.00  26.7  1.14  0.03
//   llama3.2-1b-3l        1.66 5.9     13.5      6.00  26.7  1.07  0.12
constexpr double kQkGain = 1.41421356;  // sqrt(2)
constexpr double kResidualRms = 16.0;
constexpr double kLogitStd = 6.0;
constexpr double kNormStd = 0.05;
constexpr double kBiasStd = 0.2;

uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t NameHash(std::string_view name) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name)
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

// mean + std * z, z the sum of four 16-bit uniforms of one hash, centred
// and scaled to unit variance (Irwin-Hall: bell-shaped, bounded by ±3.5).
void FillNormalish(uint64_t key, double mean, double std, int64_t begin,
                   std::span<float> out) {
  // Var of one uniform 16-bit integer is (2^32 - 1) / 12.
  const double scale = std / std::sqrt(4.0 * (4294967295.0 / 12.0));
  const float a = static_cast<float>(scale);
  const float b = static_cast<float>(mean - scale * 4 * 32767.5);
  auto fill = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const uint64_t r = SplitMix64(key + static_cast<uint64_t>(begin + i) *
                                              0x9e3779b97f4a7c15ull);
      const uint32_t sum = static_cast<uint32_t>(r & 0xffff) +
                           static_cast<uint32_t>((r >> 16) & 0xffff) +
                           static_cast<uint32_t>((r >> 32) & 0xffff) +
                           static_cast<uint32_t>(r >> 48);
      out[i] = a * static_cast<float>(sum) + b;
    }
  };
  // Plain threads per chunk rather than OpenMP: its workers would spin
  // while the writer converts and writes between chunks, taking the very
  // cores the writer needs.
  const int64_t n = static_cast<int64_t>(out.size());
  const int64_t threads = std::clamp<int64_t>(
      std::thread::hardware_concurrency(), 1, std::max<int64_t>(1, n >> 16));
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) {
    workers.emplace_back(fill, n * t / threads, n * (t + 1) / threads);
  }
  fill(0, n / threads);
  for (std::thread& w : workers) w.join();
}

class TensorList {
 public:
  TensorList(model::DType dtype, uint64_t seed) : dtype_(dtype), seed_(seed) {}

  void Add(std::string name, std::vector<int64_t> shape, double mean,
           double std) {
    const uint64_t key = SplitMix64(seed_ ^ NameHash(name));
    model::TensorToWrite t{std::move(name), std::move(shape), {}, dtype_};
    t.generate = [key, mean, std](int64_t begin, std::span<float> out) {
      FillNormalish(key, mean, std, begin, out);
    };
    tensors_.push_back(std::move(t));
  }
  // A [rows, fan_in] projection whose outputs have std `gain` for unit-RMS
  // inputs.
  void Matrix(std::string name, int64_t rows, int64_t fan_in, double gain) {
    Add(std::move(name), {rows, fan_in}, 0.0,
        gain / std::sqrt(static_cast<double>(fan_in)));
  }

  std::vector<model::TensorToWrite> Take() { return std::move(tensors_); }

 private:
  model::DType dtype_;
  uint64_t seed_;
  std::vector<model::TensorToWrite> tensors_;
};

}  // namespace

std::vector<model::TensorToWrite> SyntheticTensors(const model::ModelConfig& c,
                                                   model::DType dtype,
                                                   uint64_t seed) {
  const int64_t h = c.hidden_size, q = int64_t{c.num_heads} * c.head_dim,
                kv = int64_t{c.num_kv_heads} * c.head_dim,
                f = c.intermediate_size, v = c.vocab_size;
  const double branch_gain = kResidualRms / std::sqrt(2.0 * c.num_layers);
  // silu(g) * u of unit-variance g, u has an RMS of ~0.6; down_proj makes
  // up for it so both branches add the same.
  constexpr double kSiluMulRms = 0.6;
  TensorList list(dtype, seed);
  list.Add("model.embed_tokens.weight", {v, h}, 0.0,
           kLogitStd / std::sqrt(static_cast<double>(h)));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    list.Add(p + "input_layernorm.weight", {h}, 1.0, kNormStd);
    list.Matrix(p + "self_attn.q_proj.weight", q, h, kQkGain);
    list.Matrix(p + "self_attn.k_proj.weight", kv, h, kQkGain);
    list.Matrix(p + "self_attn.v_proj.weight", kv, h, 1.0);
    if (c.attention_bias) {
      list.Add(p + "self_attn.q_proj.bias", {q}, 0.0, kBiasStd);
      list.Add(p + "self_attn.k_proj.bias", {kv}, 0.0, kBiasStd);
      list.Add(p + "self_attn.v_proj.bias", {kv}, 0.0, kBiasStd);
    }
    list.Matrix(p + "self_attn.o_proj.weight", h, q, branch_gain);
    list.Add(p + "post_attention_layernorm.weight", {h}, 1.0, kNormStd);
    list.Matrix(p + "mlp.gate_proj.weight", f, h, 1.0);
    list.Matrix(p + "mlp.up_proj.weight", f, h, 1.0);
    list.Matrix(p + "mlp.down_proj.weight", h, f, branch_gain / kSiluMulRms);
  }
  list.Add("model.norm.weight", {h}, 1.0, kNormStd);
  if (!c.tie_word_embeddings) {
    list.Matrix("lm_head.weight", v, h, kLogitStd);
  }
  return list.Take();
}

}  // namespace hydra::bench
