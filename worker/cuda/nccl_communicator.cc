#include "worker/cuda/nccl_communicator.h"

#include <nccl.h>

#include <cstring>
#include <string>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/launch_plan.h"

namespace hydra::gpu {
namespace {

absl::Status NcclStatus(ncclResult_t code, const char* what) {
  if (code == ncclSuccess) return absl::OkStatus();
  // A peer that vanished or a broken network: the world is unusable.
  return absl::UnavailableError(
      absl::StrCat("NCCL ", what, " failed: ", ncclGetErrorString(code)));
}

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  ~Impl() {
    if (comm != nullptr) ncclCommDestroy(comm);
  }
};

NcclCommunicator::NcclCommunicator(worker::Communicator* host,
                                   std::unique_ptr<Impl> impl, int device)
    : host_(host), impl_(std::move(impl)), device_(device) {}

NcclCommunicator::~NcclCommunicator() = default;

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    worker::Communicator* host) {
  int devices = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&devices));
  if (devices == 0) {
    return absl::FailedPreconditionError("NCCL needs a CUDA device; none");
  }
  const int device = DeviceForLocalRank(devices);
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device));

  // Rank 0 makes the id; everyone receives it over the host communicator,
  // the same path in a world of one as in a world of N.
  ncclUniqueId id;
  std::string bytes;
  if (host->rank() == 0) {
    RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
    bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
  }
  RETURN_IF_ERROR(host->Broadcast(bytes, 0));
  if (bytes.size() != sizeof(id)) {
    return absl::DataLossError(absl::StrCat("NCCL unique id from rank 0 has ",
                                            bytes.size(), " bytes"));
  }
  std::memcpy(&id, bytes.data(), sizeof(id));
  auto impl = std::make_unique<Impl>();
  RETURN_IF_ERROR(
      NcclStatus(ncclCommInitRank(&impl->comm, host->size(), id, host->rank()),
                 "ncclCommInitRank"));
  return absl::WrapUnique(new NcclCommunicator(host, std::move(impl), device));
}

absl::Status NcclCommunicator::AllReduceSum(std::span<float> data) {
  return NcclStatus(ncclAllReduce(data.data(), data.data(), data.size(),
                                  ncclFloat32, ncclSum, impl_->comm, stream_),
                    "all-reduce");
}

absl::Status NcclCommunicator::AllGather(std::span<const float> local,
                                         std::span<float> out) {
  if (out.size() != local.size() * size_t(size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("all-gather: output of ", out.size(), " floats for ",
                     size(), " ranks of ", local.size()));
  }
  return NcclStatus(ncclAllGather(local.data(), out.data(), local.size(),
                                  ncclFloat32, impl_->comm, stream_),
                    "all-gather");
}

}  // namespace hydra::gpu
