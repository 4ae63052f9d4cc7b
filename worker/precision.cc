#include "worker/precision.h"

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

}  // namespace

absl::StatusOr<Precision> ResolvePrecision(const std::string& weight_dtype,
                                           const std::string& kv_cache_dtype,
                                           const model::Checkpoint& ckpt) {
  ASSIGN_OR_RETURN(const model::DType stored, CheckpointDType(ckpt));
  Precision p;
  if (weight_dtype == "auto") {
    p.weights = stored == model::DType::kBF16  ? cpu::WeightType::kBF16
                : stored == model::DType::kF16 ? cpu::WeightType::kF16
                                               : cpu::WeightType::kF32;
  } else if (weight_dtype == "fp32") {
    p.weights = cpu::WeightType::kF32;
  } else if (weight_dtype == "bf16") {
    p.weights = cpu::WeightType::kBF16;
  } else if (weight_dtype == "f16") {
    p.weights = cpu::WeightType::kF16;
  } else if (weight_dtype == "int8") {
    p.weights = cpu::WeightType::kInt8;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--weight_dtype: '", weight_dtype, "' is not one of ", kAllowed));
  }
  if (kv_cache_dtype == "auto") {
    p.kv_cache =
        stored == model::DType::kF32 ? cpu::KvType::kF32 : cpu::KvType::kBF16;
  } else if (kv_cache_dtype == "fp32") {
    p.kv_cache = cpu::KvType::kF32;
  } else if (kv_cache_dtype == "bf16") {
    p.kv_cache = cpu::KvType::kBF16;
  } else if (kv_cache_dtype == "f16") {
    p.kv_cache = cpu::KvType::kF16;
  } else if (kv_cache_dtype == "int8") {
    p.kv_cache = cpu::KvType::kInt8;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--kv_cache_dtype: '", kv_cache_dtype, "' is not one of ", kAllowed));
  }
  return p;
}

}  // namespace hydra::worker
