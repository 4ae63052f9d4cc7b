// SentencePiece behind a wall. Debian's libsentencepiece bundles its own
// copy of protobuf-lite and exports those symbols; loaded next to the system
// libprotobuf (which gRPC needs) the two copies bind to each other's
// functions and crash at start-up. So the library is only ever reached
// through a small plugin (libhydra_sentencepiece.so) that is dlopen()ed
// with RTLD_LOCAL | RTLD_DEEPBIND: its protobuf stays private (sanitizer
// builds load it without RTLD_DEEPBIND: sentencepiece_model.cc).
// This header and the plugin use no abseil either: SentencePiece's header
// declares its own `absl::string_view`, which clashes with abseil's.
#ifndef HYDRA_MODEL_SENTENCEPIECE_MODEL_H_
#define HYDRA_MODEL_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

namespace hydra::model {

// What the plugin implements. Methods return "" on success, else the
// library's message.
class SentencePieceBackend {
 public:
  virtual ~SentencePieceBackend() = default;
  virtual std::string Load(const std::string& path) = 0;
  virtual std::string Encode(const std::string& text,
                             std::vector<int>* ids) const = 0;
  virtual std::string Decode(const std::vector<int>& ids,
                             std::string* text) const = 0;
  virtual int piece_count() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
};

// The plugin's one exported entry point.
extern "C" SentencePieceBackend* HydraNewSentencePieceBackend();

// Loads the plugin (once per process) and creates a backend. On failure
// returns null and sets `error`.
std::unique_ptr<SentencePieceBackend> NewSentencePieceBackend(
    std::string* error);

}  // namespace hydra::model

#endif  // HYDRA_MODEL_SENTENCEPIECE_MODEL_H_
