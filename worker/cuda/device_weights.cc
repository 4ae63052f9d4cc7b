#include "worker/cuda/device_weights.h"

#include <cmath>
#include <cstring>
#include <span>

#include "common/status_macros.h"
#include "worker/cuda/kernels.h"

namespace hydra::gpu {
namespace {

// Uploads floats as `dtype` (converted on the host).
absl::StatusOr<DeviceBuffer<char>> UploadAs(std::span<const float> values,
                                            DType dtype) {
  if (dtype == DType::kF32) {
    std::span<const char> bytes(reinterpret_cast<const char*>(values.data()),
                                values.size_bytes());
    return DeviceBuffer<char>::FromHost(bytes);
  }
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = Bf16Bits(values[i]);
  std::span<const char> bytes(reinterpret_cast<const char*>(bits.data()),
                              bits.size() * sizeof(uint16_t));
  return DeviceBuffer<char>::FromHost(bytes);
}

absl::StatusOr<DeviceBuffer<char>> RandomAs(size_t count, DType dtype,
                                            uint64_t seed, float scale) {
  ASSIGN_OR_RETURN(auto buffer,
                   DeviceBuffer<char>::Create(count * ElementBytes(dtype)));
  if (dtype == DType::kF32) {
    CUDA_RETURN_IF_ERROR(FillUniform(reinterpret_cast<float*>(buffer.data()),
                                     count, seed, scale, nullptr));
  } else {
    CUDA_RETURN_IF_ERROR(FillUniform(reinterpret_cast<bf16*>(buffer.data()),
                                     count, seed, scale, nullptr));
  }
  return buffer;
}

absl::StatusOr<DeviceBuffer<float>> Ones(size_t count) {
  return DeviceBuffer<float>::FromHost(std::vector<float>(count, 1.0f));
}

}  // namespace

uint16_t Bf16Bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float Bf16BitsToFloat(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float x;
  std::memcpy(&x, &wide, sizeof(x));
  return x;
}

std::vector<float> Unpack(const cpu::PackedMatrix& packed) {
  const int n = packed.rows(), k = packed.cols();
  std::vector<float> out(size_t(n) * k);
  for (int r = 0; r < n; ++r) packed.ReadRow(r, out.data() + size_t(r) * k);
  return out;
}

absl::StatusOr<DeviceWeights> DeviceWeights::Upload(
    const worker::ModelWeights& host, const model::ModelConfig& config,
    const worker::Shard& shard, DType dtype) {
  DeviceWeights w;
  w.dtype = dtype;
  // A tied model's host embedding is its (padded) lm_head: the padding rows
  // are never looked up.
  ASSIGN_OR_RETURN(w.embedding,
                   UploadAs(Unpack(host.embedding_table()), dtype));
  for (const worker::LayerWeights& l : host.layers) {
    DeviceLayerWeights d;
    ASSIGN_OR_RETURN(d.attn_norm,
                     DeviceBuffer<float>::FromHost(std::span(l.attn_norm)));
    ASSIGN_OR_RETURN(d.mlp_norm,
                     DeviceBuffer<float>::FromHost(std::span(l.mlp_norm)));
    ASSIGN_OR_RETURN(d.qkv, UploadAs(Unpack(l.qkv), dtype));
    ASSIGN_OR_RETURN(d.qkv_bias, UploadAs(l.qkv_bias, dtype));
    ASSIGN_OR_RETURN(d.o, UploadAs(Unpack(l.o), dtype));
    ASSIGN_OR_RETURN(d.gate_up, UploadAs(Unpack(l.gate_up), dtype));
    ASSIGN_OR_RETURN(d.down, UploadAs(Unpack(l.down), dtype));
    w.layers.push_back(std::move(d));
  }
  ASSIGN_OR_RETURN(w.final_norm,
                   DeviceBuffer<float>::FromHost(std::span(host.final_norm)));
  ASSIGN_OR_RETURN(w.lm_head, UploadAs(Unpack(host.lm_head), dtype));
  return w;
}

absl::StatusOr<DeviceWeights> DeviceWeights::Random(const model::ModelConfig& c,
                                                    const worker::Shard& shard,
                                                    DType dtype,
                                                    uint64_t seed) {
  DeviceWeights w;
  w.dtype = dtype;
  const size_t hidden = c.hidden_size, hd = c.head_dim;
  const size_t qkv_rows = (shard.heads(c) + 2 * shard.kv_heads(c)) * hd;
  const size_t inter = shard.intermediate(c);
  // ~1/sqrt(fan-in), so activations neither vanish nor blow up.
  const float scale = 1.0f / std::sqrt(float(hidden));
  ASSIGN_OR_RETURN(
      w.embedding,
      RandomAs(size_t(shard.vocab_per_rank(c)) * hidden, dtype, seed++, 1.0f));
  for (int l = 0; l < c.num_layers; ++l) {
    DeviceLayerWeights d;
    ASSIGN_OR_RETURN(d.attn_norm, Ones(hidden));
    ASSIGN_OR_RETURN(d.mlp_norm, Ones(hidden));
    ASSIGN_OR_RETURN(d.qkv, RandomAs(qkv_rows * hidden, dtype, seed++, scale));
    if (c.attention_bias) {
      ASSIGN_OR_RETURN(d.qkv_bias, RandomAs(qkv_rows, dtype, seed++, scale));
    }
    ASSIGN_OR_RETURN(
        d.o, RandomAs(hidden * shard.heads(c) * hd, dtype, seed++, scale));
    ASSIGN_OR_RETURN(d.gate_up,
                     RandomAs(2 * inter * hidden, dtype, seed++, scale));
    ASSIGN_OR_RETURN(d.down, RandomAs(hidden * inter, dtype, seed++,
                                      1.0f / std::sqrt(float(inter))));
    w.layers.push_back(std::move(d));
  }
  ASSIGN_OR_RETURN(w.final_norm, Ones(hidden));
  ASSIGN_OR_RETURN(w.lm_head, RandomAs(size_t(shard.vocab_per_rank(c)) * hidden,
                                       dtype, seed++, scale));
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return w;
}

size_t DeviceWeights::bytes() const {
  size_t total = embedding.bytes() + final_norm.bytes() + lm_head.bytes();
  for (const DeviceLayerWeights& l : layers) {
    total += l.attn_norm.bytes() + l.mlp_norm.bytes() + l.qkv.bytes() +
             l.qkv_bias.bytes() + l.o.bytes() + l.gate_up.bytes() +
             l.down.bytes();
  }
  return total;
}

}  // namespace hydra::gpu
