// Predicts how long a step takes from what it computes, fitted online from
// the steps the engine has timed. The scheduler sizes prefill chunks with it
// so that a step that also carries decodes stays within the step-time
// budget (--max_step_ms).
//
// The model is linear in four terms:
//   time = intercept                  (reading the weights, launching the step)
//        + per_token    * tokens      (the matmuls: every token, every layer)
//        + per_attention * key reads  (sum over sequences of query tokens x
//                                      context length: attention is O(n*ctx))
//        + per_row  * logits rows     (per-row work: the lm_head, sampling,
//                                      output; a chunk's last token, and a
//                                      decode's token and each of its drafts)
// fitted by least squares of the relative error, with non-negative
// coefficients, over exponentially decaying statistics, so it follows the
// machine as it warms up or gets busier. Non-negativity keeps extrapolation
// sane where the data are nearly collinear (pure-decode steps have tokens ==
// logits rows).
#ifndef HYDRA_SCHEDULER_STEP_COST_MODEL_H_
#define HYDRA_SCHEDULER_STEP_COST_MODEL_H_

#include <array>
#include <cstdint>

namespace hydra::scheduler {

// What one step computes.
struct StepShape {
  int64_t tokens = 0;
  int64_t key_reads = 0;  // attention: sum of query tokens x context length
  int64_t logits_rows = 0;

  StepShape& operator+=(const StepShape& o) {
    tokens += o.tokens;
    key_reads += o.key_reads;
    logits_rows += o.logits_rows;
    return *this;
  }
};

// The attention's key reads of computing `n` tokens of a sequence whose
// first `computed` tokens are already in the cache: token i (0-based) of the
// chunk attends to computed + i + 1 positions.
inline int64_t KeyReads(int64_t computed, int64_t n) {
  return n * computed + n * (n + 1) / 2;
}

// A chunk of `n` tokens of one sequence, as a StepShape.
inline StepShape ChunkShape(int64_t computed, int64_t n) {
  return {n, KeyReads(computed, n), 1};
}

// A decode of one token and `drafts` draft tokens: each of its query tokens
// yields a logits row, since each is verified.
inline StepShape DecodeShape(int64_t computed, int64_t drafts) {
  return {1 + drafts, KeyReads(computed, 1 + drafts), 1 + drafts};
}

class StepCostModel {
 public:
  struct Coefficients {
    double intercept_ms = 0;
    double per_token_ms = 0;
    double per_key_read_ms = 0;
    double per_logits_row_ms = 0;
  };

  // `forgetting` in (0, 1]: each observation's weight decays by this factor
  // per later observation (0.995: a half-life of about 140 steps).
  explicit StepCostModel(double forgetting = 0.995);

  void Observe(const StepShape& shape, double milliseconds);
  double PredictMs(const StepShape& shape) const;

  const Coefficients& coefficients() const { return coefficients_; }
  int64_t observations() const { return observations_; }
  // The most tokens any observed step computed: predictions far beyond it
  // are extrapolations.
  int64_t max_observed_tokens() const { return max_observed_tokens_; }

 private:
  static constexpr int kTerms = 4;
  using Vector = std::array<double, kTerms>;
  // The terms of `shape`, scaled to similar magnitudes so the normal
  // equations stay well conditioned.
  static Vector Features(const StepShape& shape);
  void Refit();

  double forgetting_;
  // Decayed normal equations: sum w x x^T, sum w x y, sum w y^2.
  std::array<Vector, kTerms> xx_{};
  Vector xy_{};
  double yy_ = 0;
  Vector theta_{};  // in scaled units
  Coefficients coefficients_;
  int64_t observations_ = 0;
  int64_t max_observed_tokens_ = 0;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_STEP_COST_MODEL_H_
