// Early-return helpers for absl::Status / absl::StatusOr, in the style used
// inside Google and gRPC (abseil does not ship them publicly).
#ifndef HYDRA_COMMON_STATUS_MACROS_H_
#define HYDRA_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HYDRA_CONCAT_INNER_(a, b) a##b
#define HYDRA_CONCAT_(a, b) HYDRA_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status hydra_status_ = (expr);         \
    if (!hydra_status_.ok()) return hydra_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MaybeX());` unwraps a StatusOr or returns its
// error.
#define ASSIGN_OR_RETURN(lhs, expr)                                           \
  HYDRA_ASSIGN_OR_RETURN_IMPL_(HYDRA_CONCAT_(hydra_statusor_, __LINE__), lhs, \
                               expr)
#define HYDRA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

#endif  // HYDRA_COMMON_STATUS_MACROS_H_
