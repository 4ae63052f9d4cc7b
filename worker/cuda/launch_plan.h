// Host-side planning for the CUDA worker: which decode batch sizes get a
// CUDA graph, how FlashDecoding splits a context, how big the KV pool may
// grow, where each activation lives in the workspace and how a StepPlan is
// flattened into the int32 arrays the kernels read. Plain C++ with no CUDA
// dependency, so the CPU test suite covers it.
#ifndef HYDRA_WORKER_CUDA_LAUNCH_PLAN_H_
#define HYDRA_WORKER_CUDA_LAUNCH_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "hydra/internal/step.pb.h"

namespace hydra::gpu {

// Decode batch sizes captured as CUDA graphs: 1, 2, 4, 8, then every
// multiple of 16 up to `max_batch` (and `max_batch` itself), as vLLM does:
// a step pads up to the next size, wasting at most 15 rows.
std::vector<int> GraphBatchSizes(int max_batch);
// The smallest captured size >= n; 0 when n is larger than every size (the
// step then runs eagerly).
int GraphBucket(std::span<const int> sizes, int n);

// FlashDecoding: a decode token's context is cut into chunks of
// `chunk_tokens` (a multiple of the KV block size), each attended by its own
// thread block, and the partial results are merged by a second kernel.
struct DecodeSplit {
  int chunk_tokens = 0;
  int max_splits = 1;  // chunks of the longest context planned for
};
// Enough chunks that tokens * heads * splits fills ~2 waves of `num_sms`
// multiprocessors, but no chunk shorter than `min_chunk` tokens (rounded up
// to whole blocks; short chunks cost more to merge than they save) and no
// more than `split_cap` chunks (which bounds the merge scratch).
DecodeSplit PlanDecodeSplit(int tokens, int heads, int max_context,
                            int block_size, int num_sms, int min_chunk = 256,
                            int split_cap = 64);
// Chunks a context of `context` tokens takes (0 for an empty context).
int SplitsFor(const DecodeSplit& split, int context);

// Bytes the KV pool may take: what is free once weights and workspace are
// allocated, less the share of the device the fraction leaves to others
// (vLLM's gpu_memory_utilization): free - (1 - fraction) * total. An error
// when the fraction is outside (0, 1] or nothing is left.
absl::StatusOr<size_t> KvPoolBytes(size_t total_bytes, size_t free_bytes,
                                   double fraction);

// Offsets of buffers carved out of one allocation, each aligned to 256
// bytes (what cuBLAS and vectorized loads want).
class WorkspaceLayout {
 public:
  static constexpr size_t kAlignment = 256;
  // Reserves `bytes` and returns their offset.
  size_t Add(size_t bytes);
  size_t total_bytes() const { return total_; }

 private:
  size_t total_ = 0;
};

// A StepPlan flattened into one int32 array (one host-to-device copy per
// step). Sections, each `capacity` entries long unless said otherwise:
//   token_ids, positions, slots, token_seq (sequence of each token),
//   decode_tokens (tokens whose sequence has query_len 1),
//   prefill_tiles (first token of each run of <= tile_rows query tokens of
//   one sequence with query_len > 1), logits_rows,
//   block_tables ([seq_capacity, blocks_per_seq], zero padded).
// Padding tokens have position -1 and slot -1: the kernels skip them. They
// also follow the real entries of decode_tokens, so a padded (graph) step
// can run the decode kernel over all `capacity` rows.
struct StepMetadata {
  std::vector<int32_t> data;
  int capacity = 0;        // token rows (a graph's batch size when padded)
  int seq_capacity = 0;    // sequences
  int blocks_per_seq = 0;  // block-table width
  int num_tokens = 0, num_seqs = 0, num_decode = 0, num_prefill_tiles = 0,
      num_logits = 0;
  int max_context = 0;  // longest context_len in the plan

  size_t token_ids() const { return 0; }
  size_t positions() const { return size_t(capacity); }
  size_t slots() const { return 2 * size_t(capacity); }
  size_t token_seq() const { return 3 * size_t(capacity); }
  size_t decode_tokens() const { return 4 * size_t(capacity); }
  size_t prefill_tiles() const { return 5 * size_t(capacity); }
  size_t logits_rows() const { return 6 * size_t(capacity); }
  size_t block_tables() const { return 7 * size_t(capacity); }
  static size_t Size(int capacity, int seq_capacity, int blocks_per_seq) {
    return 7 * size_t(capacity) + size_t(seq_capacity) * blocks_per_seq;
  }
};

struct PackOptions {
  int tile_rows = 8;       // query rows per prefill tile
  int capacity = 0;        // 0: exactly the plan's tokens
  int seq_capacity = 0;    // 0: exactly the plan's sequences
  int blocks_per_seq = 0;  // 0: the widest block table in the plan
};
// Fails when the plan does not fit the capacities asked for.
absl::StatusOr<StepMetadata> PackStep(const internal::StepPlan& plan,
                                      const PackOptions& options = {});

// True when every sequence of the plan is a single decode token: the steps
// a CUDA graph can replay.
bool IsPureDecode(const internal::StepPlan& plan);

// The GPU a rank drives: its local rank on the node (Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK, else MPI_LOCALRANKID / SLURM_LOCALID, else 0)
// modulo the devices it sees.
int DeviceForLocalRank(int device_count);

}  // namespace hydra::gpu

#endif  // HYDRA_WORKER_CUDA_LAUNCH_PLAN_H_
