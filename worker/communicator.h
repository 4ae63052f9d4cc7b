// The collectives tensor parallelism needs, and nothing else: the forward
// pass's only coupling to MPI (or, on GPUs, NCCL). Every rank calls the same
// collectives in the same order.
#ifndef HYDRA_WORKER_COMMUNICATOR_H_
#define HYDRA_WORKER_COMMUNICATOR_H_

#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hydra::worker {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // data = sum of every rank's data, on every rank.
  virtual absl::Status AllReduceSum(std::span<float> data) = 0;
  // out = every rank's `local` (all the same length), in rank order, on
  // every rank.
  virtual absl::Status AllGather(std::span<const float> local,
                                 std::span<float> out) = 0;
  // `bytes` of rank `root` reach every rank (any length).
  virtual absl::Status Broadcast(std::string& bytes, int root) = 0;
  virtual absl::Status Barrier() = 0;
};

// A world of one: every collective is the identity, at no cost.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  absl::Status AllReduceSum(std::span<float>) override {
    return absl::OkStatus();
  }
  absl::Status AllGather(std::span<const float> local,
                         std::span<float> out) override;
  absl::Status Broadcast(std::string&, int) override {
    return absl::OkStatus();
  }
  absl::Status Barrier() override { return absl::OkStatus(); }
};

// MPI_COMM_WORLD on host memory. Initializes MPI (thread level SERIALIZED:
// the engine thread, not main, runs the collectives on rank 0) and finalizes
// it when destroyed. Errors are returned, not fatal, so a failed peer turns
// into a status the server can act on.
absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator();

// True when this process was started by mpirun (so MPI should be used).
bool LaunchedByMpi();

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_COMMUNICATOR_H_
