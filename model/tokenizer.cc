#include "model/tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "model/byte_level_bpe.h"
#include "model/sentencepiece_model.h"

namespace hydra::model {
namespace {

// How far back the detokenizer's window starts: enough tokens to recover a
// word boundary and a split UTF-8 character (at most 4 byte tokens).
constexpr size_t kWindowTokens = 6;

// True when `text` ends inside a UTF-8 character, or with the replacement
// character SentencePiece emits for byte tokens that do not form one yet.
bool EndsIncomplete(std::string_view text) {
  if (text.size() >= 3 && text.substr(text.size() - 3) == "\xEF\xBF\xBD") {
    return true;
  }
  // Walk back over continuation bytes to the lead byte of the last character.
  size_t n = text.size();
  size_t cont = 0;
  while (cont < n && cont < 4 &&
         (static_cast<unsigned char>(text[n - 1 - cont]) & 0xC0) == 0x80) {
    ++cont;
  }
  if (cont == n) return cont > 0;
  unsigned char lead = static_cast<unsigned char>(text[n - 1 - cont]);
  size_t need = lead < 0x80    ? 0
                : lead >= 0xF0 ? 3
                : lead >= 0xE0 ? 2
                : lead >= 0xC0 ? 1
                               : 0;
  return cont < need;
}

}  // namespace

class Tokenizer::Backend {
 public:
  virtual ~Backend() = default;
  // Without BOS.
  virtual absl::StatusOr<std::vector<int>> Encode(
      std::string_view text) const = 0;
  // Ids already checked against vocab_size().
  virtual absl::StatusOr<std::string> Decode(
      std::span<const int> ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
};

namespace {

class SentencePieceTokenizer final : public Tokenizer::Backend {
 public:
  explicit SentencePieceTokenizer(std::unique_ptr<SentencePieceBackend> sp)
      : sp_(std::move(sp)) {}
  absl::StatusOr<std::vector<int>> Encode(
      std::string_view text) const override {
    std::vector<int> ids;
    const std::string error = sp_->Encode(std::string(text), &ids);
    if (!error.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot tokenize text: ", error));
    }
    return ids;
  }
  absl::StatusOr<std::string> Decode(std::span<const int> ids) const override {
    std::string text;
    const std::string error =
        sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    if (!error.empty()) {
      return absl::InternalError(absl::StrCat("cannot decode tokens: ", error));
    }
    return text;
  }
  int vocab_size() const override { return sp_->piece_count(); }
  int bos_id() const override { return sp_->bos_id(); }
  int eos_id() const override { return sp_->eos_id(); }

 private:
  std::unique_ptr<SentencePieceBackend> sp_;
};

class BpeTokenizer final : public Tokenizer::Backend {
 public:
  explicit BpeTokenizer(std::unique_ptr<ByteLevelBpe> bpe)
      : bpe_(std::move(bpe)) {}
  absl::StatusOr<std::vector<int>> Encode(
      std::string_view text) const override {
    return bpe_->Encode(text);
  }
  absl::StatusOr<std::string> Decode(std::span<const int> ids) const override {
    return bpe_->Decode(ids);
  }
  int vocab_size() const override { return bpe_->vocab_size(); }
  int bos_id() const override { return bpe_->bos_id(); }
  int eos_id() const override { return bpe_->eos_id(); }

 private:
  std::unique_ptr<ByteLevelBpe> bpe_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadFromModelDir(
    const std::filesystem::path& model_dir) {
  for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
    if (std::filesystem::exists(model_dir / name)) {
      return Load(model_dir / name);
    }
  }
  return absl::NotFoundError(
      absl::StrCat(model_dir.string(),
                   ": no tokenizer.model (SentencePiece) or tokenizer.json "
                   "(byte-level BPE)"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::filesystem::path& file) {
  // SentencePiece would throw reading a directory; refuse it here.
  RETURN_IF_ERROR(CheckRegularFile(file));
  if (file.extension() == ".json") {
    ASSIGN_OR_RETURN(auto bpe, ByteLevelBpe::Load(file));
    return std::unique_ptr<Tokenizer>(
        new Tokenizer(std::make_unique<BpeTokenizer>(std::move(bpe))));
  }
  std::string error;
  auto sp = NewSentencePieceBackend(&error);
  if (sp == nullptr) return absl::FailedPreconditionError(error);
  error = sp->Load(file.string());
  if (!error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load SentencePiece tokenizer ", file.string(), ": ", error));
  }
  return std::unique_ptr<Tokenizer>(
      new Tokenizer(std::make_unique<SentencePieceTokenizer>(std::move(sp))));
}

Tokenizer::Tokenizer(std::unique_ptr<Backend> backend)
    : backend_(std::move(backend)) {
  // The longest text one token stands for, from every piece alone (a piece
  // that decodes to nothing or fails counts as a byte).
  for (int id = 0; id < backend_->vocab_size(); ++id) {
    const int one[] = {id};
    auto text = backend_->Decode(one);
    max_token_bytes_ =
        std::max<int>(max_token_bytes_, text.ok() ? text->size() : 1);
  }
}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::vector<int>> Tokenizer::Encode(std::string_view text,
                                                   bool add_bos) const {
  ASSIGN_OR_RETURN(std::vector<int> pieces, backend_->Encode(text));
  if (!add_bos || bos_id() < 0) return pieces;
  std::vector<int> ids;
  ids.reserve(pieces.size() + 1);
  ids.push_back(bos_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int> ids) const {
  const int vocab = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at index ", i,
                       " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return backend_->Decode(ids);
}

int Tokenizer::vocab_size() const { return backend_->vocab_size(); }

int64_t Tokenizer::MaxUsefulTextBytes(int max_tokens) const {
  // +1: SentencePiece drops a piece's leading space when it decodes alone.
  // ×4: normalization may shrink text before it is split (NFC composes
  // three Hangul jamo, 9 bytes, into one 3-byte syllable).
  return int64_t{max_tokens} * (max_token_bytes_ + 1) * 4;
}
int Tokenizer::bos_id() const { return backend_->bos_id(); }
int Tokenizer::eos_id() const { return backend_->eos_id(); }

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer,
                                               std::span<const int> prompt)
    : tokenizer_(tokenizer),
      ids_(prompt.begin(), prompt.end()),
      prefix_offset_(prompt.size() - std::min(prompt.size(), kWindowTokens)),
      read_offset_(prompt.size()) {}

absl::StatusOr<std::string> IncrementalDetokenizer::Push(int token_id) {
  ids_.push_back(token_id);
  return Advance(/*flush=*/false);
}

absl::StatusOr<std::string> IncrementalDetokenizer::Flush() {
  return Advance(/*flush=*/true);
}

absl::StatusOr<std::string> IncrementalDetokenizer::Advance(bool flush) {
  std::span<const int> all(ids_);
  ASSIGN_OR_RETURN(const std::string before,
                   tokenizer_.Decode(all.subspan(
                       prefix_offset_, read_offset_ - prefix_offset_)));
  ASSIGN_OR_RETURN(const std::string after,
                   tokenizer_.Decode(all.subspan(prefix_offset_)));
  const bool grew = after.size() > before.size();
  if (!flush && (!grew || EndsIncomplete(after) ||
                 after.compare(0, before.size(), before) != 0)) {
    return std::string();  // nothing final yet
  }
  // Keep the window short: the next decode starts a few tokens back.
  read_offset_ = ids_.size();
  prefix_offset_ = read_offset_ - std::min(read_offset_, kWindowTokens);
  return grew ? after.substr(before.size()) : std::string();
}

}  // namespace hydra::model
