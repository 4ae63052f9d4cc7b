// The byte-level BPE tokenizers of Hugging Face's tokenizer.json (GPT-2's
// scheme, used by Qwen2/Qwen3 and Llama 3): added tokens split out first,
// optional NFC, a regex pre-tokenizer, bytes mapped to printable characters,
// then BPE merges by rank. Checkpoints of those families ship no
// SentencePiece model, only this file.
#ifndef HYDRA_MODEL_BYTE_LEVEL_BPE_H_
#define HYDRA_MODEL_BYTE_LEVEL_BPE_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace re2 {
class RE2;
}

namespace hydra::model {

class ByteLevelBpe {
 public:
  // Reads tokenizer.json; tokenizer_config.json beside it, when present,
  // may ask for a BOS token (add_bos_token). Configurations it does not
  // implement are refused with the field named, never approximated.
  static absl::StatusOr<std::unique_ptr<ByteLevelBpe>> Load(
      const std::filesystem::path& tokenizer_json);
  // The same from the files' contents; `config_json` may be empty.
  static absl::StatusOr<std::unique_ptr<ByteLevelBpe>> Parse(
      std::string_view tokenizer_json, std::string_view config_json,
      const std::string& source);
  ~ByteLevelBpe();

  // Encodes without BOS (the caller adds bos_id() when it wants one).
  absl::StatusOr<std::vector<int>> Encode(std::string_view text) const;
  // Ids absent from the vocabulary (padding rows of the embedding) decode
  // to nothing; invalid UTF-8 becomes U+FFFD, as in Hugging Face's decoder.
  std::string Decode(std::span<const int> ids) const;

  // One past the largest id the tokenizer knows.
  int vocab_size() const { return static_cast<int>(id_to_token_.size()); }
  // The token prepended to prompts, or -1 when this tokenizer adds none.
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }

 private:
  ByteLevelBpe();
  static absl::StatusOr<std::unique_ptr<ByteLevelBpe>> ParseOrThrow(
      std::string_view tokenizer_json, std::string_view config_json,
      const std::string& source);
  void SplitAddedTokens(
      std::string_view text,
      std::vector<std::pair<std::string_view, int>>& out) const;
  void PreTokenize(std::string_view text,
                   std::vector<std::string_view>& pieces) const;
  // Whether the match at `start` came from the group that stands for
  // `\s+(?!\S)` (only asked of whitespace-only matches).
  bool FromWhitespaceGroup(std::string_view text, size_t start) const;
  void EncodePiece(std::string_view piece, std::vector<int>& ids) const;

  std::unordered_map<std::string, int> token_to_id_;
  std::vector<std::string> id_to_token_;  // "" for ids it does not know
  // (left id << 32 | right id) -> (rank << 32 | merged id).
  std::unordered_map<uint64_t, uint64_t> merges_;
  std::unique_ptr<re2::RE2> added_pattern_;  // null without added tokens
  std::unique_ptr<re2::RE2> split_pattern_;
  int whitespace_group_ = 0;  // the capture group standing for \s+(?!\S)
  bool nfc_ = false;
  bool ignore_merges_ = false;
  std::array<int, 256> byte_token_{};  // each byte's single-character token
  std::array<int16_t, 512> char_to_byte_{};  // the byte-to-character map's
                                             // inverse (-1: not a byte)
  std::array<std::string, 256> byte_to_char_;
  int bos_id_ = -1;
  int eos_id_ = -1;
};

}  // namespace hydra::model

#endif  // HYDRA_MODEL_BYTE_LEVEL_BPE_H_
