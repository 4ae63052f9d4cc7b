#include "worker/kv_fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"

namespace hydra::worker {
namespace {

// Bumped when the K/V a configuration computes, or the block layout, changes
// in a way the other inputs do not show.
constexpr char kKvFormat[] = "hydra-kv-1";
constexpr size_t kSample = size_t(1) << 20;
constexpr int kSamples = 16;

uint64_t MixString(uint64_t h, const std::string& s) {
  return Checksum64(std::as_bytes(std::span(s.data(), s.size())), h);
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

absl::StatusOr<uint64_t> MixFile(uint64_t h, const std::filesystem::path& path,
                                 bool whole) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  }
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  h = MixString(h, absl::StrCat(path.filename().string(), ":", size));
  std::vector<std::byte> buf;
  const int samples = whole || size <= kSample * kSamples ? 1 : kSamples;
  const uint64_t chunk = samples == 1 ? size : kSample;
  for (int i = 0; i < samples; ++i) {
    const uint64_t at =
        samples == 1 ? 0 : (size - chunk) / (kSamples - 1) * uint64_t(i);
    buf.resize(chunk);
    if (std::fseek(f.get(), static_cast<long>(at), SEEK_SET) != 0 ||
        std::fread(buf.data(), 1, buf.size(), f.get()) != buf.size()) {
      return absl::DataLossError(
          absl::StrCat("cannot read ", path.string(), " at ", at));
    }
    h = Checksum64(buf, h);
  }
  return h;
}

}  // namespace

absl::StatusOr<uint64_t> KvFingerprint(const std::filesystem::path& model_dir,
                                       const KvFingerprintInputs& inputs) {
  uint64_t h =
      MixString(0, absl::StrCat(kKvFormat, "|", inputs.weight_dtype, "|",
                                inputs.kv_cache_dtype, "|", inputs.tp_size, "|",
                                inputs.tp_rank, "|", inputs.block_size));
  std::vector<std::filesystem::path> weights;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".safetensors" || ext == ".bin") weights.push_back(entry.path());
  }
  std::sort(weights.begin(), weights.end());
  absl::StatusOr<uint64_t> mixed = MixFile(h, model_dir / "config.json", true);
  if (!mixed.ok()) return mixed.status();
  for (const auto& path : weights) {
    mixed = MixFile(*mixed, path, false);
    if (!mixed.ok()) return mixed.status();
  }
  return *mixed;
}

}  // namespace hydra::worker
