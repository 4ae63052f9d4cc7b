// Shared helpers for tests that run the real default model (stories15M).
#ifndef HYDRA_TESTS_UNIT_TEST_MODEL_H_
#define HYDRA_TESTS_UNIT_TEST_MODEL_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hydra::testing {

// The build's own paths, unless the environment names others: a prebuilt
// test binary run on another machine (tests/gpu/run.sh --prebuilt) finds
// the model and the golden data in that machine's checkout.
inline std::filesystem::path ModelDir() {
  const char* dir = std::getenv("HYDRA_TEST_MODEL_DIR");
  return dir != nullptr ? dir : HYDRA_TEST_MODEL_DIR;
}
inline std::filesystem::path DataDir() {
  const char* dir = std::getenv("HYDRA_TEST_DATA_DIR");
  return dir != nullptr ? dir : HYDRA_TEST_DATA_DIR;
}

// Skips the calling test, saying why, when the converted model is absent
// (scripts/setup.sh makes it).
#define HYDRA_REQUIRE_MODEL()                                                  \
  do {                                                                         \
    if (!std::filesystem::exists(::hydra::testing::ModelDir() /                \
                                 "model.safetensors")) {                       \
      GTEST_SKIP() << "no converted model at " << ::hydra::testing::ModelDir() \
                   << " (run scripts/setup.sh)";                               \
    }                                                                          \
  } while (0)

struct GoldenCase {
  std::string prompt;
  std::vector<int> prompt_ids;
  std::vector<int> output_ids;
  std::vector<std::pair<int, float>> first_step_top5;
};

inline std::vector<GoldenCase> LoadGolden() {
  std::ifstream in(DataDir() / "stories15M_greedy.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : j["cases"]) {
    GoldenCase g;
    g.prompt = c["prompt"];
    g.prompt_ids = c["prompt_ids"].get<std::vector<int>>();
    g.output_ids = c["output_ids"].get<std::vector<int>>();
    for (const auto& p : c["first_step_top5"]) {
      g.first_step_top5.emplace_back(p[0].get<int>(), p[1].get<float>());
    }
    cases.push_back(std::move(g));
  }
  return cases;
}

}  // namespace hydra::testing

#endif  // HYDRA_TESTS_UNIT_TEST_MODEL_H_
