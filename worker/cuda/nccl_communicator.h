// worker::Communicator over NCCL: AllReduceSum and AllGather on device
// memory (the spans hold device pointers), enqueued on the runner's stream
// so a CUDA graph can capture them. Step plans (Broadcast of bytes) and
// Barrier still go over the host communicator (MPI, or a world of one),
// which also carries the NCCL unique id from rank 0 at creation.
#ifndef HYDRA_WORKER_CUDA_NCCL_COMMUNICATOR_H_
#define HYDRA_WORKER_CUDA_NCCL_COMMUNICATOR_H_

#include <cuda_runtime.h>

#include <memory>

#include "absl/status/statusor.h"
#include "worker/communicator.h"

namespace hydra::gpu {

class NcclCommunicator : public worker::Communicator {
 public:
  // Selects this rank's GPU (local rank modulo the visible devices, see
  // DeviceForLocalRank), exchanges the unique id over `host` (not owned;
  // must outlive the result) and joins the NCCL world of host->size() ranks.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(
      worker::Communicator* host);
  ~NcclCommunicator() override;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  // Device memory, on stream().
  absl::Status AllReduceSum(std::span<float> data) override;
  absl::Status AllGather(std::span<const float> local,
                         std::span<float> out) override;
  // Host memory, over the host communicator.
  absl::Status Broadcast(std::string& bytes, int root) override {
    return host_->Broadcast(bytes, root);
  }
  absl::Status Barrier() override { return host_->Barrier(); }

  // The stream the collectives are enqueued on (set by the runner).
  void set_stream(cudaStream_t stream) { stream_ = stream; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }

 private:
  struct Impl;
  NcclCommunicator(worker::Communicator* host, std::unique_ptr<Impl> impl,
                   int device);

  worker::Communicator* host_;
  std::unique_ptr<Impl> impl_;
  int device_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_NCCL_COMMUNICATOR_H_
