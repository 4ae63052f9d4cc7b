// Cuts generated text at the first stop string, even when the stop string
// arrives split over several tokens: text that could still become the start
// of a stop string is held back until it is known not to.
#ifndef HYDRA_ENGINE_STOP_STRINGS_H_
#define HYDRA_ENGINE_STOP_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace hydra::engine {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string was found; `text` ends before it
  };
  // Adds a text delta.
  Result Push(std::string_view delta);
  // The held-back text, once generation ends for another reason.
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_STOP_STRINGS_H_
