// Text <-> token ids: a SentencePiece model (tokenizer.model, Llama 2 and
// Mistral) or a byte-level BPE tokenizer.json (Qwen2, Llama 3), plus the
// incremental detokenizer that streaming needs.
#ifndef HYDRA_MODEL_TOKENIZER_H_
#define HYDRA_MODEL_TOKENIZER_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hydra::model {

class Tokenizer {
 public:
  // A model folder's tokenizer: tokenizer.model when there is one (it is
  // the reference for the families that ship both), else tokenizer.json.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromModelDir(
      const std::filesystem::path& model_dir);
  // One tokenizer file: *.json is a Hugging Face tokenizer.json, anything
  // else a SentencePiece model.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::filesystem::path& file);
  ~Tokenizer();

  // The tokenizer's encoding, preceded by BOS when `add_bos` and the
  // tokenizer has one.
  absl::StatusOr<std::vector<int>> Encode(std::string_view text,
                                          bool add_bos = true) const;
  absl::StatusOr<std::string> Decode(std::span<const int> ids) const;
  int vocab_size() const;
  int bos_id() const;  // -1: none is added
  int eos_id() const;
  // A bound on the bytes of text that can encode to at most `max_tokens`
  // tokens: longer text is refused before it is tokenized.
  int64_t MaxUsefulTextBytes(int max_tokens) const;

  class Backend;  // one per tokenizer format, in tokenizer.cc

 private:
  explicit Tokenizer(std::unique_ptr<Backend> backend);
  std::unique_ptr<Backend> backend_;
  int max_token_bytes_ = 1;
};

// Turns a growing list of token ids into text deltas. Decoding token by token
// would lose SentencePiece's context (a word's leading space, the bytes of a
// character split over several byte tokens), so each step decodes a short
// window that starts a few tokens back and emits only what is new, holding
// back output while it ends in an incomplete UTF-8 character. Joining every
// delta gives Decode(all ids) minus Decode(the prompt).
class IncrementalDetokenizer {
 public:
  // `prompt` gives the context the first generated tokens are decoded in.
  IncrementalDetokenizer(const Tokenizer& tokenizer,
                         std::span<const int> prompt);

  // Appends one token and returns the text that became final.
  absl::StatusOr<std::string> Push(int token_id);
  // Text still held back (an incomplete character at the very end).
  absl::StatusOr<std::string> Flush();

 private:
  // Emits the text past read_offset_ once it is final (or at once, when
  // flushing) and slides the window forward.
  absl::StatusOr<std::string> Advance(bool flush);

  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
  size_t prefix_offset_;  // window start
  size_t read_offset_;    // tokens before this are already emitted
};

}  // namespace hydra::model

#endif  // HYDRA_MODEL_TOKENIZER_H_
