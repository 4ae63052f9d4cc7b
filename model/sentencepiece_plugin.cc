// The plugin side: the only translation unit that includes SentencePiece.
#include <exception>

#include "model/sentencepiece_model.h"
#include "sentencepiece_processor.h"

namespace hydra::model {
namespace {

class Backend final : public SentencePieceBackend {
 public:
  // The library reads with iostreams, which may throw; no exception may
  // cross the plugin boundary.
  std::string Load(const std::string& path) override {
    try {
      return Message(sp_.Load(path));
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  std::string Encode(const std::string& text,
                     std::vector<int>* ids) const override {
    return Message(sp_.Encode(text, ids));
  }
  std::string Decode(const std::vector<int>& ids,
                     std::string* text) const override {
    return Message(sp_.Decode(ids, text));
  }
  int piece_count() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }

 private:
  static std::string Message(const sentencepiece::util::Status& status) {
    return status.ok() ? std::string() : status.ToString();
  }
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

extern "C" SentencePieceBackend* HydraNewSentencePieceBackend() {
  return new Backend();  // ownership passes to the caller's unique_ptr
}

}  // namespace hydra::model
