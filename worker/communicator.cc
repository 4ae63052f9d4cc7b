#include "worker/communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"

namespace hydra::worker {

absl::Status LocalCommunicator::AllGather(std::span<const float> local,
                                          std::span<float> out) {
  std::copy(local.begin(), local.end(), out.begin());
  return absl::OkStatus();
}

bool LaunchedByMpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr ||
         std::getenv("PMI_SIZE") != nullptr;
}

namespace {

absl::Status MpiStatus(int code, const char* what) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  return absl::UnavailableError(
      absl::StrCat("MPI ", what, " failed: ", std::string(message, length)));
}

// Waits for `request` without holding a core: a worker rank spends its idle
// time here, waiting for the next step plan, and a blocking MPI call would
// busy-poll (Open MPI's default) for as long as the server has no work. It
// polls flat out for a while, so back-to-back steps see no added latency,
// then sleeps between polls, up to 1 ms.
absl::Status PoliteWait(MPI_Request& request) {
  const auto spin_until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
  auto nap = std::chrono::microseconds(20);
  while (true) {
    int done = 0;
    if (auto s = MpiStatus(MPI_Test(&request, &done, MPI_STATUS_IGNORE),
                           "broadcast");
        !s.ok() || done) {
      return s;
    }
    if (std::chrono::steady_clock::now() > spin_until) {
      std::this_thread::sleep_for(nap);
      nap = std::min(nap * 2, std::chrono::microseconds(1000));
    }
  }
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int rank, int size) : rank_(rank), size_(size) {}
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status AllReduceSum(std::span<float> data) override {
    return MpiStatus(
        MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()),
                      MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
        "all-reduce");
  }
  absl::Status AllGather(std::span<const float> local,
                         std::span<float> out) override {
    return MpiStatus(
        MPI_Allgather(local.data(), static_cast<int>(local.size()), MPI_FLOAT,
                      out.data(), static_cast<int>(local.size()), MPI_FLOAT,
                      MPI_COMM_WORLD),
        "all-gather");
  }
  absl::Status Broadcast(std::string& bytes, int root) override {
    long long length = static_cast<long long>(bytes.size());
    MPI_Request request;
    if (auto s = MpiStatus(MPI_Ibcast(&length, 1, MPI_LONG_LONG, root,
                                      MPI_COMM_WORLD, &request),
                           "broadcast");
        !s.ok()) {
      return s;
    }
    if (auto s = PoliteWait(request); !s.ok()) return s;
    bytes.resize(static_cast<size_t>(length));
    return MpiStatus(MPI_Bcast(bytes.data(), static_cast<int>(length), MPI_BYTE,
                               root, MPI_COMM_WORLD),
                     "broadcast");
  }
  absl::Status Barrier() override {
    return MpiStatus(MPI_Barrier(MPI_COMM_WORLD), "barrier");
  }

 private:
  int rank_;
  int size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator() {
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) !=
      MPI_SUCCESS) {
    return absl::UnavailableError("MPI_Init_thread failed");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return absl::FailedPreconditionError(
        "this MPI library does not support MPI_THREAD_SERIALIZED");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::make_unique<MpiCommunicator>(rank, size);
}

}  // namespace hydra::worker
