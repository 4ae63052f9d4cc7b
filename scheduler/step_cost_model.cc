#include "scheduler/step_cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hydra::scheduler {
namespace {

// Scales of the terms: a step's tokens in thousands, key reads in millions,
// logits rows in hundreds keep every feature near 1 on real steps.
constexpr double kTokenScale = 1e-3;
constexpr double kKeyReadScale = 1e-6;
constexpr double kRowScale = 1e-2;

// Solves the n x n system a x = b in place (Gaussian elimination with
// partial pivoting). False when it is singular.
template <size_t N>
bool Solve(std::array<std::array<double, N>, N> a, std::array<double, N> b,
           int n, std::array<double, N>& x) {
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r) {
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    }
    if (std::fabs(a[pivot][col]) < 1e-12) return false;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (int r = col + 1; r < n; ++r) {
      const double f = a[r][col] / a[col][col];
      for (int c = col; c < n; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  for (int r = n - 1; r >= 0; --r) {
    double s = b[r];
    for (int c = r + 1; c < n; ++c) s -= a[r][c] * x[c];
    x[r] = s / a[r][r];
  }
  return true;
}

}  // namespace

StepCostModel::StepCostModel(double forgetting)
    : forgetting_(std::clamp(forgetting, 1e-3, 1.0)) {}

StepCostModel::Vector StepCostModel::Features(const StepShape& shape) {
  return {1.0, double(shape.tokens) * kTokenScale,
          double(shape.key_reads) * kKeyReadScale,
          double(shape.logits_rows) * kRowScale};
}

void StepCostModel::Observe(const StepShape& shape, double milliseconds) {
  if (!(milliseconds >= 0) || !std::isfinite(milliseconds)) return;
  const Vector x = Features(shape);
  // Relative errors are what a budget cares about: weighting by 1/y^2
  // keeps a 500 ms prefill step from drowning out the 30 ms decode steps.
  const double w = 1.0 / std::max(milliseconds * milliseconds, 1e-2);
  for (int i = 0; i < kTerms; ++i) {
    for (int j = 0; j < kTerms; ++j) {
      xx_[i][j] = forgetting_ * xx_[i][j] + w * x[i] * x[j];
    }
    xy_[i] = forgetting_ * xy_[i] + w * x[i] * milliseconds;
  }
  yy_ = forgetting_ * yy_ + w * milliseconds * milliseconds;
  ++observations_;
  max_observed_tokens_ = std::max(max_observed_tokens_, shape.tokens);
  Refit();
}

// Non-negative least squares by enumeration: with four terms there are only
// fifteen non-empty sets of active terms. Each is solved on its own normal
// equations; among the solutions with no negative coefficient, the one with
// the smallest residual wins. Exact, and cheap at one refit per step.
void StepCostModel::Refit() {
  // A ridge small against the data keeps a set whose terms never varied
  // (e.g. logits rows == tokens in every step so far) solvable.
  const double ridge = 1e-9 * (xx_[0][0] + 1e-12);
  double best_residual = std::numeric_limits<double>::infinity();
  Vector best{};
  for (int set = 1; set < (1 << kTerms); ++set) {
    int index[kTerms];
    int n = 0;
    for (int t = 0; t < kTerms; ++t) {
      if (set & (1 << t)) index[n++] = t;
    }
    std::array<Vector, kTerms> a{};
    Vector b{}, sub{};
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) a[i][j] = xx_[index[i]][index[j]];
      a[i][i] += ridge;
      b[i] = xy_[index[i]];
    }
    if (!Solve(a, b, n, sub)) continue;
    Vector theta{};
    bool non_negative = true;
    for (int i = 0; i < n; ++i) {
      theta[index[i]] = sub[i];
      if (sub[i] < 0) non_negative = false;
    }
    if (!non_negative) continue;
    // Residual sum of squares from the normal equations:
    // y'y - 2 theta'X'y + theta'X'X theta.
    double residual = yy_;
    for (int i = 0; i < kTerms; ++i) {
      residual -= 2 * theta[i] * xy_[i];
      for (int j = 0; j < kTerms; ++j) {
        residual += theta[i] * xx_[i][j] * theta[j];
      }
    }
    if (residual < best_residual) {
      best_residual = residual;
      best = theta;
    }
  }
  theta_ = best;
  coefficients_ = {theta_[0], theta_[1] * kTokenScale,
                   theta_[2] * kKeyReadScale, theta_[3] * kRowScale};
}

double StepCostModel::PredictMs(const StepShape& shape) const {
  const Vector x = Features(shape);
  double ms = 0;
  for (int i = 0; i < kTerms; ++i) ms += theta_[i] * x[i];
  return ms;
}

}  // namespace hydra::scheduler
