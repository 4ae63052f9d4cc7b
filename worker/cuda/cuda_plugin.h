// `hydra serve --device=cuda` reaches the CUDA runner through a plugin,
// libhydra_cuda.so, loaded at run time. Linked into the server, cuBLAS,
// cuBLASLt, NCCL and cudart would add ~120 KiB of static TLS to every thread,
// more than the 100 KiB stacks the metrics server (civetweb) starts its
// threads with: pthread_create fails and /metrics never comes up. Loaded with
// dlopen, their TLS is allocated on demand instead. The plugin holds only the
// CUDA code; the rest of hydra (worker, model, StepPlan) it takes from the
// executable, which exports its symbols in CUDA builds.
// This header needs no CUDA headers.
#ifndef HYDRA_WORKER_CUDA_CUDA_PLUGIN_H_
#define HYDRA_WORKER_CUDA_CUDA_PLUGIN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/communicator.h"
#include "worker/step_runner.h"

namespace hydra::gpu {

struct CudaPluginOptions {
  int block_size = 16;
  double memory_fraction = 0.9;
  int max_seqs = 256;     // sequences of one step; also the largest graph
  int max_tokens = 2048;  // tokens of one step
  worker::KvTierOptions kv_tiers;  // below the device pool
};

struct CudaPluginRunner {
  std::unique_ptr<worker::StepRunner> runner;
  int num_blocks = 0;  // its KV pool, sized from free device memory
};

using CudaPluginLoad = absl::StatusOr<CudaPluginRunner> (*)(
    const std::string& model_dir, const CudaPluginOptions& options,
    worker::Communicator* comm);

// Finds and loads libhydra_cuda.so ($HYDRA_CUDA_PLUGIN, next to the running
// binary, or this build's lib/ folder), once per process; the error names
// every path tried.
absl::StatusOr<CudaPluginLoad> LoadCudaPlugin();

}  // namespace hydra::gpu

// The plugin's one export.
extern "C" hydra::gpu::CudaPluginLoad HydraCudaPluginLoad();

#endif  // HYDRA_WORKER_CUDA_CUDA_PLUGIN_H_
