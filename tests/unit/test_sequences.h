// Sequences for the scheduler tests: distinct, deterministic prompts.
#ifndef HYDRA_TESTS_UNIT_TEST_SEQUENCES_H_
#define HYDRA_TESTS_UNIT_TEST_SEQUENCES_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "scheduler/sequence.h"

namespace hydra::scheduler::testing {

inline std::unique_ptr<Sequence> MakeSequence(uint64_t id, int prompt_len,
                                              int priority = 0) {
  std::vector<int> prompt(prompt_len);
  for (int i = 0; i < prompt_len; ++i)
    prompt[i] = 3 + (id * 131 + i * 7) % 1000;
  return std::make_unique<Sequence>(id, std::move(prompt), priority);
}

}  // namespace hydra::scheduler::testing

#endif  // HYDRA_TESTS_UNIT_TEST_SEQUENCES_H_
