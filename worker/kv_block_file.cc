#include "worker/kv_block_file.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"

namespace hydra::worker {
namespace {

constexpr char kMagic[8] = {'H', 'Y', 'D', 'R', 'A', 'K', 'V', '1'};
constexpr uint32_t kVersion = 1;
// The most tokens a block file may claim: far above any block size, low
// enough that a corrupt count cannot ask for gigabytes.
constexpr uint32_t kMaxTokens = 1 << 16;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t num_tokens;
  uint64_t fingerprint;
  uint64_t hash;
  uint64_t parent_hash;
  uint64_t payload_bytes;
  uint64_t checksum;  // of the tokens, then the payload
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

uint64_t ChecksumOf(std::span<const int> tokens,
                    std::span<const std::byte> payload) {
  return Checksum64(payload, Checksum64(std::as_bytes(tokens)));
}

absl::StatusOr<Header> ReadHeader(std::FILE* f,
                                  const std::filesystem::path& path) {
  Header h;
  if (std::fread(&h, sizeof(h), 1, f) != 1) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": shorter than a KV block header"));
  }
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 ||
      h.version != kVersion) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": not a version-1 hydra KV block file"));
  }
  if (h.num_tokens > kMaxTokens) {
    return absl::DataLossError(absl::StrCat(
        path.string(), ": claims ", h.num_tokens, " tokens in one block"));
  }
  return h;
}

absl::StatusOr<std::vector<int>> ReadTokens(std::FILE* f, const Header& h,
                                            const std::filesystem::path& path) {
  std::vector<int> tokens(h.num_tokens);
  if (std::fread(tokens.data(), sizeof(int), tokens.size(), f) !=
      tokens.size()) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": truncated in its tokens"));
  }
  return tokens;
}

}  // namespace

absl::Status WriteKvBlockFile(const std::filesystem::path& path,
                              const KvBlockFileInfo& info,
                              std::span<const std::byte> payload) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.num_tokens = static_cast<uint32_t>(info.tokens.size());
  h.fingerprint = info.fingerprint;
  h.hash = info.hash;
  h.parent_hash = info.parent_hash;
  h.payload_bytes = payload.size();
  h.checksum = ChecksumOf(info.tokens, payload);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    if (f == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot create ", tmp.string(),
                                                 ": ", std::strerror(errno)));
    }
    const bool ok =
        std::fwrite(&h, sizeof(h), 1, f.get()) == 1 &&
        std::fwrite(info.tokens.data(), sizeof(int), info.tokens.size(),
                    f.get()) == info.tokens.size() &&
        std::fwrite(payload.data(), 1, payload.size(), f.get()) ==
            payload.size() &&
        std::fflush(f.get()) == 0;
    if (!ok) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string(),
                                                 ": ", std::strerror(errno)));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp.string(),
                                               " to ", path.string(), ": ",
                                               ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<KvBlockFileInfo> ReadKvBlockFileInfo(
    const std::filesystem::path& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  }
  absl::StatusOr<Header> h = ReadHeader(f.get(), path);
  if (!h.ok()) return h.status();
  absl::StatusOr<std::vector<int>> tokens = ReadTokens(f.get(), *h, path);
  if (!tokens.ok()) return tokens.status();
  return KvBlockFileInfo{h->fingerprint, h->hash, h->parent_hash,
                         *std::move(tokens), h->payload_bytes};
}

absl::Status ReadKvBlockFile(const std::filesystem::path& path,
                             uint64_t fingerprint, uint64_t hash,
                             std::span<std::byte> payload) {
  File f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  }
  absl::StatusOr<Header> h = ReadHeader(f.get(), path);
  if (!h.ok()) return h.status();
  if (h->fingerprint != fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        path.string(), ": written by another configuration (fingerprint ",
        h->fingerprint, ", expected ", fingerprint, ")"));
  }
  if (h->hash != hash || h->payload_bytes != payload.size()) {
    return absl::DataLossError(absl::StrCat(
        path.string(), ": holds block ", h->hash, " of ", h->payload_bytes,
        " bytes, expected block ", hash, " of ", payload.size()));
  }
  absl::StatusOr<std::vector<int>> tokens = ReadTokens(f.get(), *h, path);
  if (!tokens.ok()) return tokens.status();
  if (std::fread(payload.data(), 1, payload.size(), f.get()) !=
      payload.size()) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": truncated in its K/V bytes"));
  }
  if (ChecksumOf(*tokens, payload) != h->checksum) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": checksum mismatch (corrupt)"));
  }
  return absl::OkStatus();
}

}  // namespace hydra::worker
