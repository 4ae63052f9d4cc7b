// The number formats a runner keeps its weights and KV cache in, chosen by
// name (--weight_dtype, --kv_cache_dtype) with "auto" resolved against the
// checkpoint.
#ifndef HYDRA_WORKER_PRECISION_H_
#define HYDRA_WORKER_PRECISION_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "worker/cpu/kernels.h"
#include "worker/cpu/paged_attention.h"

namespace hydra::worker {

struct Precision {
  cpu::WeightType weights = cpu::WeightType::kF32;
  cpu::KvType kv_cache = cpu::KvType::kF32;
};

// Resolves the two names: "auto", "fp32", "bf16", "f16" or "int8" each.
// Weights "auto" keep the checkpoint's dtype (BF16 stays BF16, F16 stays
// F16, F32 stays F32); KV "auto" is bf16 for a half-precision checkpoint,
// fp32 otherwise (so fp32 models keep bit-exact fp32 numerics). An unknown
// name is an InvalidArgument naming the flag and the allowed values.
absl::StatusOr<Precision> ResolvePrecision(const std::string& weight_dtype,
                                           const std::string& kv_cache_dtype,
                                           const model::Checkpoint& checkpoint);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_PRECISION_H_
