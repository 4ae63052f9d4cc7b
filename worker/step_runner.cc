#include "worker/step_runner.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::worker {

absl::Status ValidateStepPlan(const internal::StepPlan& plan,
                              const model::ModelConfig& config, int num_blocks,
                              int block_size, int max_positions) {
  if (max_positions <= 0) max_positions = config.max_position_embeddings;
  const int tokens = plan.token_ids_size();
  if (plan.positions_size() != tokens || plan.slot_mapping_size() != tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("step plan: token_ids, positions and slot_mapping must "
                     "have the same length (",
                     tokens, ", ", plan.positions_size(), ", ",
                     plan.slot_mapping_size(), ")"));
  }
  const int64_t slots = int64_t{num_blocks} * block_size;
  for (int t = 0; t < tokens; ++t) {
    if (plan.token_ids(t) < 0 || plan.token_ids(t) >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: token_ids[", t, "] = ", plan.token_ids(t),
          " is outside the vocabulary [0, ", config.vocab_size, ")"));
    }
    if (plan.positions(t) < 0 || plan.positions(t) >= max_positions) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: positions[", t, "] = ", plan.positions(t),
                       " is outside [0, ", max_positions, ")"));
    }
    if (plan.slot_mapping(t) < 0 || plan.slot_mapping(t) >= slots) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: slot_mapping[", t, "] = ", plan.slot_mapping(t),
          " is outside the KV cache's [0, ", slots, ") slots"));
    }
  }
  int covered = 0;
  const int bs = block_size;
  for (int s = 0; s < plan.sequences_size(); ++s) {
    const auto& seq = plan.sequences(s);
    if (seq.query_len() <= 0 || seq.query_len() > seq.context_len() ||
        covered + seq.query_len() > tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: sequence ", s, " has query_len ",
                       seq.query_len(), " and context_len ", seq.context_len(),
                       " for ", tokens - covered, " remaining tokens"));
    }
    if (int64_t{seq.block_table_size()} * bs < seq.context_len()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: sequence ", s, " has ", seq.block_table_size(),
          " blocks for ", seq.context_len(), " tokens"));
    }
    for (int b : seq.block_table()) {
      if (b < 0 || b >= num_blocks) {
        return absl::InvalidArgumentError(
            absl::StrCat("step plan: sequence ", s, " names block ", b,
                         " outside [0, ", num_blocks, ")"));
      }
    }
    // Each query token attends to its own position and everything before.
    for (int i = 0; i < seq.query_len(); ++i) {
      const int expected = seq.context_len() - seq.query_len() + i;
      if (plan.positions(covered + i) != expected) {
        return absl::InvalidArgumentError(absl::StrCat(
            "step plan: sequence ", s, " token ", i, " has position ",
            plan.positions(covered + i), ", expected ", expected));
      }
    }
    covered += seq.query_len();
  }
  if (covered != tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step plan: sequences cover ", covered, " of ", tokens, " tokens"));
  }
  for (const auto& copy : plan.block_copies()) {
    if (copy.src() < 0 || copy.src() >= num_blocks || copy.dst() < 0 ||
        copy.dst() >= num_blocks) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: block copy ", copy.src(), " -> ", copy.dst(),
                       " is outside [0, ", num_blocks, ")"));
    }
  }
  auto tier_ok = [](internal::KvTier t) {
    return t == internal::KV_TIER_HOST || t == internal::KV_TIER_DISK;
  };
  for (const auto& save : plan.kv_saves()) {
    if (save.block() < 0 || save.block() >= num_blocks || !tier_ok(save.tier()))
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: KV save of block ", save.block(), " to tier ",
          save.tier(), " (blocks [0, ", num_blocks, "))"));
  }
  for (const auto& load : plan.kv_loads()) {
    if (load.block() < 0 || load.block() >= num_blocks || !tier_ok(load.tier()))
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: KV load into block ", load.block(), " from tier ",
          load.tier(), " (blocks [0, ", num_blocks, "))"));
  }
  for (int r : plan.logits_rows()) {
    if (r < 0 || r >= tokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: logits row ", r, " is outside [0, ", tokens, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ServeStepPlans(
    Communicator& comm,
    absl::FunctionRef<absl::Status(const internal::StepPlan&)> forward) {
  while (true) {
    std::string bytes;
    RETURN_IF_ERROR(comm.Broadcast(bytes, 0));
    internal::StepPlan plan;
    if (!plan.ParseFromString(bytes)) {
      return absl::DataLossError(
          "worker: the step plan from rank 0 does not parse");
    }
    if (plan.command() == internal::StepPlan::SHUTDOWN) return absl::OkStatus();
    RETURN_IF_ERROR(forward(plan));
  }
}

KvTierTraffic::KvTierTraffic(
    KvTierStore* store, const internal::StepPlan& plan,
    absl::FunctionRef<void(int, std::span<std::byte>)> read_block,
    std::function<void(int, std::span<const std::byte>)> write_block,
    bool beside_forward)
    : plan_(plan) {
  ok_.assign(plan.kv_loads_size(), 0.0f);
  if (store == nullptr) return;
  store->SaveAndDrop(plan, read_block);
  if (plan.kv_loads().empty()) return;
  if (!beside_forward) {
    store->Load(plan_, write_block, ok_);
    return;
  }
  loads_ = std::thread([this, store, write = std::move(write_block)] {
    store->Load(plan_, write, ok_);
  });
}

KvTierTraffic::~KvTierTraffic() {
  if (loads_.joinable()) loads_.join();
}

absl::Status KvTierTraffic::Finish(Communicator& comm,
                                   std::vector<int>& failed_loads) {
  if (loads_.joinable()) loads_.join();
  failed_loads.clear();
  if (ok_.empty()) return absl::OkStatus();
  // A block counts as loaded only if every rank has its shard.
  if (comm.size() > 1) RETURN_IF_ERROR(comm.AllReduceSum(ok_));
  for (size_t i = 0; i < ok_.size(); ++i) {
    if (ok_[i] < static_cast<float>(comm.size())) {
      failed_loads.push_back(static_cast<int>(i));
    }
  }
  return absl::OkStatus();
}

absl::Status SendShutdown(Communicator& comm) {
  if (comm.size() == 1) return absl::OkStatus();
  internal::StepPlan plan;
  plan.set_command(internal::StepPlan::SHUTDOWN);
  std::string bytes = plan.SerializeAsString();
  return comm.Broadcast(bytes, 0);
}

}  // namespace hydra::worker
