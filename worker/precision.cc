#include "worker/precision.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::worker {
namespace {

constexpr char kAllowed[] = "auto, fp32, bf16, f16, int8";

// The checkpoint's weight dtype: that of its first projection, which every
// Llama-family checkpoint has.
absl::StatusOr<model::DType> CheckpointDType(const model::Checkpoint& ckpt) {
  return ckpt.TensorDType("model.layers.0.self_attn.q_proj.weight");
}

// The format named `name` (one of the four), or nullopt.
template <typename Type>
std::optional<Type> Named(const std::string& name, Type fp32, Type bf16,
                          Type f16, Type int8) {
  if (name == "fp32") return fp32;
  if (name == "bf16") return bf16;
  if (name == "f16") return f16;
  if (name == "int8") return int8;
  return std::nullopt;
}

absl::Status Unknown(const std::string& flag, const std::string& name) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": '", name, "' is not one of ", kAllowed));
}

}  // namespace

absl::StatusOr<Precision> ResolvePrecision(const std::string& weight_dtype,
                                           const std::string& kv_cache_dtype,
                                           const model::Checkpoint& ckpt) {
  using cpu::KvType;
  using cpu::WeightType;
  ASSIGN_OR_RETURN(const model::DType stored, CheckpointDType(ckpt));
  const bool half = stored != model::DType::kF32;
  Precision p;
  if (weight_dtype == "auto") {
    p.weights = stored == model::DType::kBF16  ? WeightType::kBF16
                : stored == model::DType::kF16 ? WeightType::kF16
                                               : WeightType::kF32;
  } else if (auto named =
                 Named(weight_dtype, WeightType::kF32, WeightType::kBF16,
                       WeightType::kF16, WeightType::kInt8)) {
    p.weights = *named;
  } else {
    return Unknown("--weight_dtype", weight_dtype);
  }
  if (kv_cache_dtype == "auto") {
    p.kv_cache = half ? KvType::kBF16 : KvType::kF32;
  } else if (auto named = Named(kv_cache_dtype, KvType::kF32, KvType::kBF16,
                                KvType::kF16, KvType::kInt8)) {
    p.kv_cache = *named;
  } else {
    return Unknown("--kv_cache_dtype", kv_cache_dtype);
  }
  return p;
}

}  // namespace hydra::worker
