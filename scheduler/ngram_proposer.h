// Prompt lookup (n-gram) drafting: guesses a sequence's next tokens by
// finding where its last tokens occurred before, in its prompt or its
// output, and copying what followed. No model, no state: it pays off when
// the output copies its input (code edits, quoting, summaries, repeats).
#ifndef HYDRA_SCHEDULER_NGRAM_PROPOSER_H_
#define HYDRA_SCHEDULER_NGRAM_PROPOSER_H_

#include <span>
#include <vector>

namespace hydra::scheduler {

// Up to `max_tokens` tokens that followed the most recent earlier occurrence
// of the last `ngram` tokens of `tokens` (the occurrence may overlap the
// suffix itself, as in a run of one repeated token); empty when the suffix
// occurs nowhere else, or `tokens` is shorter than ngram + 1.
std::vector<int> ProposeNgramDrafts(std::span<const int> tokens, int ngram,
                                    int max_tokens);

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_NGRAM_PROPOSER_H_
