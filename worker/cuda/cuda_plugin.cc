// The entry point of libhydra_cuda.so (see cuda_plugin.h).
#include "worker/cuda/cuda_plugin.h"

#include "common/status_macros.h"
#include "worker/cuda/cuda_runner.h"

namespace hydra::gpu {
namespace {

absl::StatusOr<CudaPluginRunner> Load(const std::string& model_dir,
                                      const CudaPluginOptions& options,
                                      worker::Communicator* comm) {
  CudaRunnerOptions cuda;
  cuda.block_size = options.block_size;
  cuda.memory_fraction = options.memory_fraction;
  cuda.max_seqs = options.max_seqs;
  cuda.max_tokens = options.max_tokens;
  cuda.max_graph_batch = options.max_seqs;
  cuda.kv_tiers = options.kv_tiers;
  ASSIGN_OR_RETURN(auto runner, CudaRunner::Load(model_dir, cuda, comm));
  const int num_blocks = runner->num_blocks();
  return CudaPluginRunner{std::move(runner), num_blocks};
}

}  // namespace
}  // namespace hydra::gpu

extern "C" hydra::gpu::CudaPluginLoad HydraCudaPluginLoad() {
  return &hydra::gpu::Load;
}
