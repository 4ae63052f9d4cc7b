#include "worker/cuda/launch_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace hydra::gpu {

std::vector<int> GraphBatchSizes(int max_batch) {
  std::vector<int> sizes;
  for (int s : {1, 2, 4, 8}) {
    if (s <= max_batch) sizes.push_back(s);
  }
  for (int s = 16; s <= max_batch; s += 16) sizes.push_back(s);
  if (max_batch > 0 && sizes.back() != max_batch) sizes.push_back(max_batch);
  return sizes;
}

int GraphBucket(std::span<const int> sizes, int n) {
  auto it = std::lower_bound(sizes.begin(), sizes.end(), n);
  return it == sizes.end() ? 0 : *it;
}

DecodeSplit PlanDecodeSplit(int tokens, int heads, int max_context,
                            int block_size, int num_sms, int min_chunk,
                            int split_cap) {
  const int round = std::max(1, block_size);
  auto whole_blocks = [&](int n) { return (n + round - 1) / round * round; };
  const int floor_chunk = whole_blocks(std::max(1, min_chunk));
  const int context = std::max(1, max_context);
  const long ctas = long(std::max(1, tokens)) * std::max(1, heads);
  const long want =
      std::max<long>(1, (2L * std::max(1, num_sms) + ctas - 1) / ctas);
  int chunk = whole_blocks(int((context + want - 1) / want));
  chunk = std::max(chunk, floor_chunk);
  const int cap = std::max(1, split_cap);
  chunk = std::max(chunk, whole_blocks((context + cap - 1) / cap));
  DecodeSplit split;
  split.chunk_tokens = chunk;
  split.max_splits = (context + chunk - 1) / chunk;
  return split;
}

int SplitsFor(const DecodeSplit& split, int context) {
  if (context <= 0 || split.chunk_tokens <= 0) return 0;
  return (context + split.chunk_tokens - 1) / split.chunk_tokens;
}

absl::StatusOr<size_t> KvPoolBytes(size_t total_bytes, size_t free_bytes,
                                   double fraction) {
  if (!(fraction > 0.0 && fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPU memory fraction must be in (0, 1], got ", fraction));
  }
  const size_t reserved =
      size_t(std::llround((1.0 - fraction) * double(total_bytes)));
  if (free_bytes <= reserved) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no device memory left for the KV cache: ", free_bytes,
                     " bytes free after weights and workspace, ", reserved,
                     " bytes reserved by the memory fraction ", fraction,
                     "; raise the fraction or use more tensor-parallel ranks"));
  }
  return free_bytes - reserved;
}

size_t WorkspaceLayout::Add(size_t bytes) {
  const size_t offset = total_;
  total_ += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  return offset;
}

bool IsPureDecode(const internal::StepPlan& plan) {
  for (const auto& seq : plan.sequences()) {
    if (seq.query_len() != 1) return false;
  }
  return plan.sequences_size() > 0;
}

absl::StatusOr<StepMetadata> PackStep(const internal::StepPlan& plan,
                                      const PackOptions& options) {
  StepMetadata m;
  m.num_tokens = plan.token_ids_size();
  m.num_seqs = plan.sequences_size();
  m.num_logits = plan.logits_rows_size();
  int widest = 0;
  for (const auto& seq : plan.sequences()) {
    widest = std::max(widest, seq.block_table_size());
    m.max_context = std::max(m.max_context, seq.context_len());
  }
  m.capacity = options.capacity > 0 ? options.capacity : m.num_tokens;
  m.seq_capacity = options.seq_capacity > 0 ? options.seq_capacity : m.num_seqs;
  m.blocks_per_seq =
      options.blocks_per_seq > 0 ? options.blocks_per_seq : widest;
  if (m.num_tokens > m.capacity || m.num_seqs > m.seq_capacity ||
      widest > m.blocks_per_seq || m.num_logits > m.capacity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan of ", m.num_tokens, " tokens, ", m.num_seqs,
        " sequences and ", widest, "-block tables does not fit capacities ",
        m.capacity, ", ", m.seq_capacity, ", ", m.blocks_per_seq));
  }
  if (plan.positions_size() != m.num_tokens ||
      plan.slot_mapping_size() != m.num_tokens) {
    return absl::InvalidArgumentError(
        "step plan: positions and slot_mapping must match token_ids");
  }
  m.data.assign(
      StepMetadata::Size(m.capacity, m.seq_capacity, m.blocks_per_seq), 0);
  int32_t* d = m.data.data();
  for (int t = m.num_tokens; t < m.capacity; ++t) {
    d[m.positions() + t] = -1;
    d[m.slots() + t] = -1;
  }
  const int tile = std::max(1, options.tile_rows);
  int t = 0;
  for (int s = 0; s < m.num_seqs; ++s) {
    const auto& seq = plan.sequences(s);
    if (t + seq.query_len() > m.num_tokens) {
      return absl::InvalidArgumentError(
          "step plan: sequences cover more tokens than the plan has");
    }
    std::copy(seq.block_table().begin(), seq.block_table().end(),
              d + m.block_tables() + size_t(s) * m.blocks_per_seq);
    for (int i = 0; i < seq.query_len(); ++i, ++t) {
      d[m.token_ids() + t] = plan.token_ids(t);
      d[m.positions() + t] = plan.positions(t);
      d[m.slots() + t] = plan.slot_mapping(t);
      d[m.token_seq() + t] = s;
      if (seq.query_len() == 1) {
        d[m.decode_tokens() + m.num_decode++] = t;
      } else if (i % tile == 0) {
        d[m.prefill_tiles() + m.num_prefill_tiles++] = t;
      }
    }
  }
  if (t != m.num_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan: sequences cover ", t, " of ", m.num_tokens, " tokens"));
  }
  for (int p = m.num_tokens; p < m.capacity; ++p) {
    d[m.decode_tokens() + m.num_decode + (p - m.num_tokens)] = p;
  }
  for (int r = 0; r < m.num_logits; ++r) {
    d[m.logits_rows() + r] = plan.logits_rows(r);
  }
  return m;
}

int DeviceForLocalRank(int device_count) {
  if (device_count <= 0) return 0;
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      return std::max(0, std::atoi(value)) % device_count;
    }
  }
  return 0;
}

}  // namespace hydra::gpu
