// The forward pass on one NVIDIA GPU per rank: the CPU ModelRunner's
// algorithm (worker/model_runner.cc) over the device kernel set, with the
// weights, the paged KV cache and the activations in device memory.
//
// Each step flattens the StepPlan into one int32 array (one copy to the
// device), runs the layers on one stream and copies back only what the
// caller asks for: the logits rows (Step) or, with sampling on the device,
// one token id and logprob per row (StepAndSample). Pure decode steps of up
// to max_graph_batch sequences replay a CUDA graph captured per padded batch
// size (captured on first use); prefill and mixed steps run eagerly.
#ifndef HYDRA_WORKER_CUDA_CUDA_RUNNER_H_
#define HYDRA_WORKER_CUDA_CUDA_RUNNER_H_

#include <cuda_runtime.h>

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/communicator.h"
#include "worker/cuda/device_buffer.h"
#include "worker/cuda/device_weights.h"
#include "worker/cuda/gemm.h"
#include "worker/cuda/kernels.h"
#include "worker/cuda/launch_plan.h"
#include "worker/cuda/nccl_communicator.h"
#include "worker/step_runner.h"
#include "worker/weights.h"

namespace hydra::gpu {

struct CudaRunnerOptions {
  DType dtype = DType::kBF16;  // storage of weights, activations, KV
  int block_size = 16;
  // KV blocks; 0 sizes the pool from the device memory left after weights
  // and workspace, keeping (1 - memory_fraction) of the device free.
  int num_blocks = 0;
  double memory_fraction = 0.9;
  int max_tokens = 2048;  // most tokens of one step (workspace rows)
  int max_seqs = 256;     // most sequences (and logits rows) of one step
  bool cuda_graphs = true;
  int max_graph_batch = 256;
  // Run the collectives through NCCL even in a world of one: the N-rank
  // code path on a single GPU (tests).
  bool force_collectives = false;
  // KV tiers below the device pool (host memory, disk); Load only.
  worker::KvTierOptions kv_tiers;
};

class CudaRunner final : public worker::StepRunner {
 public:
  // Loads this rank's shard of a model folder. `host` (not owned; null = a
  // world of one) carries step plans and the NCCL id; the runner makes its
  // own NCCL communicator over it when the world has several ranks (or
  // force_collectives is set).
  static absl::StatusOr<std::unique_ptr<CudaRunner>> Load(
      const std::filesystem::path& model_dir, const CudaRunnerOptions& options,
      worker::Communicator* host = nullptr);
  // A model of `config`'s shape with random weights (benchmarks).
  static absl::StatusOr<std::unique_ptr<CudaRunner>> CreateSynthetic(
      const model::ModelConfig& config, const CudaRunnerOptions& options,
      uint64_t seed, worker::Communicator* host = nullptr);
  ~CudaRunner() override;

  absl::Status Step(const internal::StepPlan& plan,
                    std::vector<float>& logits) override;
  // Runs `plan` and samples each logits row on the device with params[r];
  // only tokens (and logprobs, when non-null) come back.
  absl::Status StepAndSample(const internal::StepPlan& plan,
                             std::span<const DeviceSamplingRow> params,
                             std::vector<int>& tokens,
                             std::vector<float>* logprobs);
  bool can_sample_greedy() const override { return true; }
  absl::Status StepGreedy(const internal::StepPlan& plan,
                          std::vector<int>& tokens) override;
  absl::Status RunWorkerLoop() override;
  absl::Status ShutdownWorkers() override;
  const model::ModelConfig& config() const override { return config_; }
  int64_t kv_cache_bytes() const override {
    return static_cast<int64_t>(kv_bytes_);
  }
  absl::Duration last_collective_time() const override {
    return absl::ZeroDuration();
  }
  // Weights, activations and KV share one device type.
  std::string weight_dtype() const override {
    return options_.dtype == DType::kF32 ? "fp32" : "bf16";
  }
  std::string kv_cache_dtype() const override { return weight_dtype(); }
  int64_t weight_bytes() const override {
    return static_cast<int64_t>(weights_.bytes());
  }
  // Counted on the host copy the device weights are uploaded from.
  const worker::NonFiniteWeights& non_finite_weights() const override {
    return non_finite_;
  }
  const worker::KvTierStore* kv_tiers() const override { return tiers_.get(); }
  std::span<const int> failed_kv_loads() const override {
    return failed_kv_loads_;
  }

  int num_blocks() const { return num_blocks_; }
  int block_size() const { return options_.block_size; }
  size_t kv_bytes() const { return kv_bytes_; }
  const worker::Shard& shard() const { return shard_; }
  cudaStream_t stream() const { return stream_; }
  // Graphs captured so far, by padded batch size.
  int graphs_captured() const { return int(graphs_.size()); }
  // Benchmarks: switch graph replay on or off after loading.
  void set_cuda_graphs(bool on) { options_.cuda_graphs = on; }

 private:
  struct Graph;
  // Device-side views of one step's metadata and launch shape.
  struct Launch {
    int m = 0;           // token rows (padded for graphs)
    int num_decode = 0;  // rows the decode kernel runs
    int num_tiles = 0;   // prefill tiles
    int num_logits = 0;
    DecodeSplit split;
    int capacity = 0, seq_capacity = 0;
  };

  CudaRunner(model::ModelConfig config, const CudaRunnerOptions& options,
             worker::Shard shard, worker::Communicator* host);
  static absl::StatusOr<std::unique_ptr<CudaRunner>> Create(
      model::ModelConfig config, const CudaRunnerOptions& options,
      worker::Communicator* host, worker::Shard shard);
  absl::Status Init(DeviceWeights weights);
  // Validates `plan` against the pool and the workspace and, on rank 0 of
  // several, broadcasts it.
  absl::Status Begin(const internal::StepPlan& plan);
  absl::Status AllocateKv();
  absl::Status Forward(const internal::StepPlan& plan);
  // Forward without the lower-tier traffic around it.
  absl::Status ForwardTokens(const internal::StepPlan& plan);
  // One block's K and V of every layer, device to host and back (the
  // layout worker::KvTierStore stores); `tier_error_` keeps a failure.
  void ReadBlock(int block, std::span<std::byte> out);
  void WriteBlock(int block, std::span<const std::byte> in);
  size_t BlockBytesPerHalf() const;
  template <typename T>
  absl::Status Enqueue(const Launch& launch);
  absl::Status Replay(const Launch& launch);
  absl::Status CopyBlocks(const internal::StepPlan& plan);
  template <typename T>
  DeviceKvLayer<T> KvLayer(int layer);

  model::ModelConfig config_;
  CudaRunnerOptions options_;
  worker::Shard shard_;
  worker::LocalCommunicator local_comm_;
  worker::Communicator* host_;
  std::unique_ptr<NcclCommunicator> nccl_;
  bool collectives_ = false;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
  int num_sms_ = 1;
  std::unique_ptr<Blas> blas_;
  DeviceWeights weights_;
  worker::NonFiniteWeights non_finite_;
  DeviceBuffer<float> rope_cos_, rope_sin_;
  DeviceBuffer<char> workspace_;
  DeviceBuffer<char> kv_;  // per layer: K then V
  size_t kv_bytes_ = 0;
  int num_blocks_ = 0;
  int blocks_per_seq_ = 0;
  int max_splits_ = 1;

  // Pointers into workspace_.
  float *x_ = nullptr, *proj_ = nullptr, *partial_ = nullptr,
        *logits_ = nullptr, *local_logits_ = nullptr, *gathered_ = nullptr,
        *logprobs_ = nullptr;
  void *h_ = nullptr, *qkv_ = nullptr, *attn_ = nullptr, *gate_up_ = nullptr,
       *act_ = nullptr;
  int32_t *meta_ = nullptr, *tokens_ = nullptr;
  DeviceSamplingRow* sampling_ = nullptr;
  int last_logits_ = 0;  // rows of logits_ the last Forward produced

  std::unique_ptr<worker::KvTierStore> tiers_;
  std::vector<int> failed_kv_loads_;
  absl::Status tier_error_;

  std::vector<int> graph_sizes_;
  std::map<int, std::unique_ptr<Graph>> graphs_;
};

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_CUDA_RUNNER_H_
