// When a stream's tokens arrived, as the client saw them, and the time to
// first token and inter-token gaps that follow. Shared by the gRPC and the
// HTTP streams so that both measure alike.
#ifndef HYDRA_BENCH_LOADGEN_TOKEN_TIMELINE_H_
#define HYDRA_BENCH_LOADGEN_TOKEN_TIMELINE_H_

#include <chrono>
#include <vector>

#include "bench/loadgen/request_record.h"

namespace hydra::loadgen {

class TokenTimeline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TokenTimeline(Clock::time_point start) : start_(start) {}

  // A message carrying `tokens` (> 0) arrived at `at`.
  void Add(Clock::time_point at, int tokens);
  int tokens() const { return total_; }

  // Makes the count `total` when the server's usage says otherwise (a
  // message may carry the text of several tokens, or none): each arrival's
  // count is scaled to it, largest remainders first, every arrival keeping
  // at least one token while there are enough.
  void SetTotal(int total);

  // ttft_ms (-1: nothing arrived), itl_ms and output_tokens. The first
  // message's other tokens came with it (gaps of 0); a later message of k
  // tokens splits its gap from the previous one evenly among them.
  void Fill(RequestRecord& record) const;

 private:
  struct Arrival {
    Clock::time_point at;
    int tokens;
  };
  Clock::time_point start_;
  std::vector<Arrival> arrivals_;
  int total_ = 0;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_TOKEN_TIMELINE_H_
