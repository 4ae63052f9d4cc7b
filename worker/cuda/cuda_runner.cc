#include "worker/cuda/cuda_runner.h"

#include <algorithm>
#include <climits>
#include <string>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/safetensors.h"
#include "worker/cpu/kernels.h"
#include "worker/cuda/cuda_status.h"
#include "worker/kv_fingerprint.h"

namespace hydra::gpu {

struct CudaRunner::Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};

namespace {

size_t KvBytesPerBlock(const model::ModelConfig& c, const worker::Shard& s,
                       int block_size, DType dtype) {
  return size_t(2) * c.num_layers * block_size * s.kv_heads(c) * c.head_dim *
         ElementBytes(dtype);
}

// The smallest of every rank's `value`, over host broadcasts (the KV pool
// must have the same block count everywhere).
absl::StatusOr<int> MinOverRanks(worker::Communicator* comm, int value) {
  int result = value;
  for (int r = 0; r < comm->size(); ++r) {
    std::string bytes = comm->rank() == r ? std::to_string(value) : "";
    RETURN_IF_ERROR(comm->Broadcast(bytes, r));
    int other = 0;
    if (!absl::SimpleAtoi(bytes, &other)) {
      return absl::DataLossError("KV block count from a peer does not parse");
    }
    result = std::min(result, other);
  }
  return result;
}

}  // namespace

CudaRunner::CudaRunner(model::ModelConfig config,
                       const CudaRunnerOptions& options, worker::Shard shard,
                       worker::Communicator* host)
    : config_(std::move(config)),
      options_(options),
      shard_(shard),
      host_(host == nullptr ? &local_comm_ : host) {}

CudaRunner::~CudaRunner() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  graphs_.clear();
  blas_.reset();
  nccl_.reset();
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::StatusOr<std::unique_ptr<CudaRunner>> CudaRunner::Create(
    model::ModelConfig config, const CudaRunnerOptions& options,
    worker::Communicator* host, worker::Shard shard) {
  RETURN_IF_ERROR(worker::Shard::Check(config, shard.size));
  if (options.block_size <= 0 || options.max_tokens <= 0 ||
      options.max_seqs <= 0 || options.num_blocks < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA runner: block_size, max_tokens and max_seqs must be positive "
        "(got ",
        options.block_size, ", ", options.max_tokens, ", ", options.max_seqs,
        ")"));
  }
  if (config.head_dim > kMaxHeadDim || config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA runner: head_dim ", config.head_dim,
                     " is not supported (even, at most ", kMaxHeadDim, ")"));
  }
  int devices = 0;
  const cudaError_t probe = cudaGetDeviceCount(&devices);
  if (probe != cudaSuccess || devices == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no CUDA device is available (", cudaGetErrorString(probe), ")"));
  }
  auto runner =
      absl::WrapUnique(new CudaRunner(std::move(config), options, shard, host));
  runner->collectives_ = shard.size > 1 || options.force_collectives;
  int device = DeviceForLocalRank(devices);
  if (runner->collectives_) {
    ASSIGN_OR_RETURN(runner->nccl_, NcclCommunicator::Create(runner->host_));
    device = runner->nccl_->device();
  } else {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  }
  runner->device_ = device;
  CUDA_RETURN_IF_ERROR(
      cudaStreamCreateWithFlags(&runner->stream_, cudaStreamNonBlocking));
  if (runner->nccl_ != nullptr) runner->nccl_->set_stream(runner->stream_);
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(
      &runner->num_sms_, cudaDevAttrMultiProcessorCount, device));
  ASSIGN_OR_RETURN(runner->blas_, Blas::Create(runner->stream_));
  return runner;
}

absl::StatusOr<std::unique_ptr<CudaRunner>> CudaRunner::Load(
    const std::filesystem::path& model_dir, const CudaRunnerOptions& options,
    worker::Communicator* host) {
  ASSIGN_OR_RETURN(model::ModelConfig config,
                   model::LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(model::Checkpoint checkpoint,
                   model::Checkpoint::Open(model_dir));
  const worker::Shard shard = host == nullptr
                                  ? worker::Shard{}
                                  : worker::Shard{host->rank(), host->size()};
  ASSIGN_OR_RETURN(auto runner, Create(config, options, host, shard));
  DeviceWeights device;
  {
    ASSIGN_OR_RETURN(worker::ModelWeights weights,
                     worker::ModelWeights::Load(checkpoint, config, shard));
    ASSIGN_OR_RETURN(
        device, DeviceWeights::Upload(weights, config, shard, options.dtype));
    runner->non_finite_ = std::move(weights.non_finite);
  }
  RETURN_IF_ERROR(runner->Init(std::move(device)));
  if (options.kv_tiers.enabled()) {
    ASSIGN_OR_RETURN(
        const uint64_t fingerprint,
        worker::KvFingerprint(model_dir,
                              {runner->weight_dtype(), runner->kv_cache_dtype(),
                               shard.size, shard.rank, options.block_size}));
    ASSIGN_OR_RETURN(runner->tiers_, worker::KvTierStore::Open(
                                         options.kv_tiers, fingerprint,
                                         2 * size_t(config.num_layers) *
                                             runner->BlockBytesPerHalf()));
  }
  return runner;
}

absl::StatusOr<std::unique_ptr<CudaRunner>> CudaRunner::CreateSynthetic(
    const model::ModelConfig& config, const CudaRunnerOptions& options,
    uint64_t seed, worker::Communicator* host) {
  const worker::Shard shard = host == nullptr
                                  ? worker::Shard{}
                                  : worker::Shard{host->rank(), host->size()};
  ASSIGN_OR_RETURN(auto runner, Create(config, options, host, shard));
  ASSIGN_OR_RETURN(DeviceWeights weights,
                   DeviceWeights::Random(config, shard, options.dtype, seed));
  RETURN_IF_ERROR(runner->Init(std::move(weights)));
  return runner;
}

absl::Status CudaRunner::Init(DeviceWeights weights) {
  weights_ = std::move(weights);
  const model::ModelConfig& c = config_;
  const cpu::RopeTable rope(c.max_position_embeddings, c.head_dim, c.rope_theta,
                            c.rope_scaling);
  const size_t table = size_t(c.max_position_embeddings) * (c.head_dim / 2);
  ASSIGN_OR_RETURN(
      rope_cos_, DeviceBuffer<float>::FromHost(std::span(rope.cos(0), table)));
  ASSIGN_OR_RETURN(
      rope_sin_, DeviceBuffer<float>::FromHost(std::span(rope.sin(0), table)));

  const int bs = options_.block_size;
  blocks_per_seq_ = (c.max_position_embeddings + bs - 1) / bs;
  max_splits_ = PlanDecodeSplit(1, shard_.heads(c), c.max_position_embeddings,
                                bs, num_sms_)
                    .max_splits;
  if (options_.cuda_graphs) {
    graph_sizes_ = GraphBatchSizes(std::min(
        {options_.max_graph_batch, options_.max_seqs, options_.max_tokens}));
  }

  const size_t eb = ElementBytes(options_.dtype);
  const size_t tokens = options_.max_tokens, rows = options_.max_seqs;
  const size_t dim = c.hidden_size, hd = c.head_dim;
  const size_t heads = shard_.heads(c), kv_heads = shard_.kv_heads(c);
  const size_t inter = shard_.intermediate(c);
  const size_t per_rank = shard_.vocab_per_rank(c);
  WorkspaceLayout layout;
  const size_t x = layout.Add(tokens * dim * 4);
  const size_t proj = layout.Add(tokens * dim * 4);
  const size_t h = layout.Add(tokens * dim * eb);
  const size_t qkv = layout.Add(tokens * (heads + 2 * kv_heads) * hd * eb);
  const size_t attn = layout.Add(tokens * heads * hd * eb);
  const size_t gate_up = layout.Add(tokens * 2 * inter * eb);
  const size_t act = layout.Add(tokens * inter * eb);
  const size_t partial =
      layout.Add(rows * heads * size_t(max_splits_) * (hd + 2) * 4);
  const size_t logits = layout.Add(rows * c.vocab_size * 4);
  const size_t local_logits = layout.Add(rows * per_rank * 4);
  const size_t gathered = layout.Add(size_t(shard_.size) * rows * per_rank * 4);
  const size_t meta = layout.Add(
      StepMetadata::Size(int(tokens), int(rows), blocks_per_seq_) * 4);
  const size_t sampling = layout.Add(rows * sizeof(DeviceSamplingRow));
  const size_t sampled = layout.Add(rows * 4);
  const size_t logprobs = layout.Add(rows * 4);
  ASSIGN_OR_RETURN(workspace_,
                   DeviceBuffer<char>::Create(layout.total_bytes()));
  char* base = workspace_.data();
  x_ = reinterpret_cast<float*>(base + x);
  proj_ = reinterpret_cast<float*>(base + proj);
  h_ = base + h;
  qkv_ = base + qkv;
  attn_ = base + attn;
  gate_up_ = base + gate_up;
  act_ = base + act;
  partial_ = reinterpret_cast<float*>(base + partial);
  logits_ = reinterpret_cast<float*>(base + logits);
  local_logits_ = reinterpret_cast<float*>(base + local_logits);
  gathered_ = reinterpret_cast<float*>(base + gathered);
  meta_ = reinterpret_cast<int32_t*>(base + meta);
  sampling_ = reinterpret_cast<DeviceSamplingRow*>(base + sampling);
  tokens_ = reinterpret_cast<int32_t*>(base + sampled);
  logprobs_ = reinterpret_cast<float*>(base + logprobs);
  RETURN_IF_ERROR(AllocateKv());
  // The uploads (cudaMemcpy from pageable memory may return before its DMA
  // lands), the random weights and the KV pool's cudaMemset ran on the
  // legacy default stream, which the non-blocking stream_ does not wait
  // for: without this, the first step could write K/V that the memset then
  // zeroes, or read weights still in flight.
  return CudaStatus(cudaDeviceSynchronize(), "CUDA runner initialization");
}

absl::Status CudaRunner::AllocateKv() {
  const size_t per_block =
      KvBytesPerBlock(config_, shard_, options_.block_size, options_.dtype);
  int blocks = options_.num_blocks;
  if (blocks == 0) {
    size_t free = 0, total = 0;
    CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
    ASSIGN_OR_RETURN(const size_t pool,
                     KvPoolBytes(total, free, options_.memory_fraction));
    blocks = int(std::min<size_t>(pool / per_block, INT_MAX));
  }
  if (host_->size() > 1) {
    ASSIGN_OR_RETURN(blocks, MinOverRanks(host_, blocks));
  }
  if (blocks <= 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the KV pool holds no block of ", per_block, " bytes"));
  }
  ASSIGN_OR_RETURN(kv_, DeviceBuffer<char>::Create(size_t(blocks) * per_block));
  // Zeros, not leftovers: a block read before it is written holds numbers.
  CUDA_RETURN_IF_ERROR(cudaMemset(kv_.data(), 0, kv_.bytes()));
  kv_bytes_ = kv_.bytes();
  num_blocks_ = blocks;
  return absl::OkStatus();
}

absl::Status CudaRunner::Begin(const internal::StepPlan& plan) {
  // The current device is per host thread, and the engine steps from its own
  // thread, not the one that loaded the runner.
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  RETURN_IF_ERROR(worker::ValidateStepPlan(plan, config_, num_blocks_,
                                           options_.block_size));
  if (plan.token_ids_size() > options_.max_tokens ||
      plan.sequences_size() > options_.max_seqs ||
      plan.logits_rows_size() > options_.max_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan of ", plan.token_ids_size(), " tokens, ",
        plan.sequences_size(), " sequences and ", plan.logits_rows_size(),
        " logits rows exceeds the CUDA runner's ", options_.max_tokens,
        " tokens and ", options_.max_seqs, " sequences"));
  }
  if (host_->size() > 1) {
    std::string bytes = plan.SerializeAsString();
    RETURN_IF_ERROR(host_->Broadcast(bytes, 0));
  }
  return absl::OkStatus();
}

absl::Status CudaRunner::Step(const internal::StepPlan& plan,
                              std::vector<float>& logits) {
  RETURN_IF_ERROR(Begin(plan));
  RETURN_IF_ERROR(Forward(plan));
  logits.resize(size_t(last_logits_) * config_.vocab_size);
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.data(), logits_,
                                       logits.size() * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

absl::Status CudaRunner::StepAndSample(
    const internal::StepPlan& plan, std::span<const DeviceSamplingRow> params,
    std::vector<int>& tokens, std::vector<float>* logprobs) {
  if (int(params.size()) != plan.logits_rows_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("StepAndSample: ", params.size(), " sampling rows for ",
                     plan.logits_rows_size(), " logits rows"));
  }
  RETURN_IF_ERROR(Begin(plan));
  RETURN_IF_ERROR(Forward(plan));
  const int rows = last_logits_;
  if (rows == 0) {  // tier traffic only: nothing to sample
    tokens.clear();
    if (logprobs != nullptr) logprobs->clear();
    return absl::OkStatus();
  }
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(sampling_, params.data(),
                                       params.size_bytes(),
                                       cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(
      SampleRows(logits_, rows, config_.vocab_size, sampling_, tokens_,
                 logprobs == nullptr ? nullptr : logprobs_, stream_));
  std::vector<int32_t> ids(rows);
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ids.data(), tokens_,
                                       rows * sizeof(int32_t),
                                       cudaMemcpyDeviceToHost, stream_));
  if (logprobs != nullptr) {
    logprobs->resize(rows);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logprobs->data(), logprobs_,
                                         rows * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
  }
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  tokens.assign(ids.begin(), ids.end());
  return absl::OkStatus();
}

absl::Status CudaRunner::StepGreedy(const internal::StepPlan& plan,
                                    std::vector<int>& tokens) {
  const std::vector<DeviceSamplingRow> greedy(plan.logits_rows_size());
  return StepAndSample(plan, greedy, tokens, nullptr);
}

absl::Status CudaRunner::RunWorkerLoop() {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  RETURN_IF_ERROR(worker::ServeStepPlans(
      *host_, [&](const internal::StepPlan& plan) { return Forward(plan); }));
  return CudaStatus(cudaStreamSynchronize(stream_), "worker shutdown");
}

absl::Status CudaRunner::ShutdownWorkers() {
  return worker::SendShutdown(*host_);
}

size_t CudaRunner::BlockBytesPerHalf() const {
  return size_t(options_.block_size) * shard_.kv_heads(config_) *
         config_.head_dim * ElementBytes(options_.dtype);
}

void CudaRunner::ReadBlock(int block, std::span<std::byte> out) {
  const size_t block_bytes = BlockBytesPerHalf();
  const size_t layer_bytes = block_bytes * num_blocks_;
  for (int half = 0; half < 2 * config_.num_layers && tier_error_.ok();
       ++half) {
    tier_error_ = CudaStatus(
        cudaMemcpyAsync(out.data() + half * block_bytes,
                        kv_.data() + half * layer_bytes + block * block_bytes,
                        block_bytes, cudaMemcpyDeviceToHost, stream_),
        "KV tier save");
  }
  if (tier_error_.ok()) {
    tier_error_ = CudaStatus(cudaStreamSynchronize(stream_), "KV tier save");
  }
}

void CudaRunner::WriteBlock(int block, std::span<const std::byte> in) {
  const size_t block_bytes = BlockBytesPerHalf();
  const size_t layer_bytes = block_bytes * num_blocks_;
  for (int half = 0; half < 2 * config_.num_layers && tier_error_.ok();
       ++half) {
    tier_error_ = CudaStatus(
        cudaMemcpyAsync(kv_.data() + half * layer_bytes + block * block_bytes,
                        in.data() + half * block_bytes, block_bytes,
                        cudaMemcpyHostToDevice, stream_),
        "KV tier load");
  }
  // `in` is the store's buffer, reused for the next load.
  if (tier_error_.ok()) {
    tier_error_ = CudaStatus(cudaStreamSynchronize(stream_), "KV tier load");
  }
}

absl::Status CudaRunner::CopyBlocks(const internal::StepPlan& plan) {
  const size_t block_bytes = BlockBytesPerHalf();
  const size_t layer_bytes = block_bytes * num_blocks_;
  for (const auto& copy : plan.block_copies()) {
    for (int half = 0; half < 2 * config_.num_layers; ++half) {
      char* base = kv_.data() + half * layer_bytes;
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
          base + copy.dst() * block_bytes, base + copy.src() * block_bytes,
          block_bytes, cudaMemcpyDeviceToDevice, stream_));
    }
  }
  return absl::OkStatus();
}

absl::Status CudaRunner::Forward(const internal::StepPlan& plan) {
  // Over PCIe on stream_, on this thread: the loads are ordered before the
  // forward pass on the same stream rather than overlapped with it.
  tier_error_ = absl::OkStatus();
  worker::KvTierTraffic tiers(
      tiers_.get(), plan,
      [this](int b, std::span<std::byte> out) { ReadBlock(b, out); },
      [this](int b, std::span<const std::byte> in) { WriteBlock(b, in); },
      /*beside_forward=*/false);
  RETURN_IF_ERROR(tier_error_);
  RETURN_IF_ERROR(ForwardTokens(plan));
  return tiers.Finish(*host_, failed_kv_loads_);
}

absl::Status CudaRunner::ForwardTokens(const internal::StepPlan& plan) {
  RETURN_IF_ERROR(CopyBlocks(plan));
  const model::ModelConfig& c = config_;
  const int m = plan.token_ids_size();
  if (m == 0) {  // a step of tier traffic only
    last_logits_ = 0;
    return absl::OkStatus();
  }
  const int bucket = options_.cuda_graphs && IsPureDecode(plan)
                         ? GraphBucket(graph_sizes_, m)
                         : 0;
  PackOptions pack;
  pack.tile_rows = kPrefillTileRows;
  pack.blocks_per_seq = blocks_per_seq_;
  if (bucket > 0) pack.capacity = pack.seq_capacity = bucket;
  ASSIGN_OR_RETURN(const StepMetadata meta, PackStep(plan, pack));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(meta_, meta.data.data(),
                                       meta.data.size() * sizeof(int32_t),
                                       cudaMemcpyHostToDevice, stream_));
  last_logits_ = meta.num_logits;
  Launch launch;
  launch.m = meta.capacity;
  launch.capacity = meta.capacity;
  launch.seq_capacity = meta.seq_capacity;
  launch.num_tiles = meta.num_prefill_tiles;
  launch.num_decode = bucket > 0 ? bucket : meta.num_decode;
  launch.num_logits = bucket > 0 ? bucket : meta.num_logits;
  // A graph is replayed for any context, so it plans for the longest.
  launch.split =
      PlanDecodeSplit(std::max(1, launch.num_decode), shard_.heads(c),
                      bucket > 0 ? c.max_position_embeddings : meta.max_context,
                      options_.block_size, num_sms_, 256, max_splits_);
  if (bucket > 0) return Replay(launch);
  return options_.dtype == DType::kF32 ? Enqueue<float>(launch)
                                       : Enqueue<bf16>(launch);
}

absl::Status CudaRunner::Replay(const Launch& launch) {
  std::unique_ptr<Graph>& graph = graphs_[launch.m];
  if (graph == nullptr) {
    auto captured = std::make_unique<Graph>();
    CUDA_RETURN_IF_ERROR(
        cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    const absl::Status status = options_.dtype == DType::kF32
                                    ? Enqueue<float>(launch)
                                    : Enqueue<bf16>(launch);
    const cudaError_t end = cudaStreamEndCapture(stream_, &captured->graph);
    if (!status.ok() || end != cudaSuccess) {
      graphs_.erase(launch.m);
      RETURN_IF_ERROR(status);
      return CudaStatus(end, "cudaStreamEndCapture");
    }
    if (const cudaError_t e =
            cudaGraphInstantiate(&captured->exec, captured->graph, 0);
        e != cudaSuccess) {
      // No empty entry left behind: graphs_captured() counts entries.
      graphs_.erase(launch.m);
      return CudaStatus(e, "cudaGraphInstantiate");
    }
    graph = std::move(captured);
  }
  return CudaStatus(cudaGraphLaunch(graph->exec, stream_), "cudaGraphLaunch");
}

}  // namespace hydra::gpu
