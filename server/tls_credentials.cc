#include "server/tls_credentials.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/read_file.h"
#include "common/status_macros.h"

namespace hydra::server {
namespace {

constexpr char kCertFlag[] = "--tls_cert";
constexpr char kKeyFlag[] = "--tls_key";
constexpr char kSwapped[] = "were --tls_cert and --tls_key swapped?";

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A read-only BIO over `text` (which must outlive it).
Bio MemoryBio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Never asks for a passphrase: OpenSSL's default callback would prompt on
// the terminal and hang a server started by an orchestrator.
int NoPassphrase(char*, int, int, void*) { return -1; }

// OpenSSL's reason for the oldest queued error, and an empty queue after.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unknown error";
}

// Whether the error queue holds only the end of input (no further PEM
// block), which ends every read of a PEM sequence.
bool OnlyEndOfInput() {
  const unsigned long code = ERR_peek_last_error();
  return code == 0 || (ERR_GET_LIB(code) == ERR_LIB_PEM &&
                       ERR_GET_REASON(code) == PEM_R_NO_START_LINE);
}

std::string Where(const char* flag, const std::string& path) {
  return absl::StrCat(flag, ": ", path);
}

// The file's text; empty (or only white space) is refused here, since
// OpenSSL would only say "no start line".
absl::StatusOr<std::string> ReadPemFile(const char* flag,
                                        const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(flag, ": ", text.status().message()));
  }
  if (absl::StripAsciiWhitespace(*text).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(flag, path), " is empty"));
  }
  return text;
}

// What a file without the PEM blocks expected seems to hold instead.
std::string Guess(const std::string& text, bool want_certificate) {
  if (want_certificate && absl::StrContains(text, "PRIVATE KEY-----")) {
    return absl::StrCat("it looks like a private key: ", kSwapped);
  }
  if (!want_certificate && absl::StrContains(text, "CERTIFICATE-----")) {
    return absl::StrCat("it looks like a certificate: ", kSwapped);
  }
  // Every DER structure starts with a SEQUENCE tag.
  if (text[0] == '\x30') {
    return want_certificate ? "it looks like binary DER; convert it with "
                              "`openssl x509 -inform der -out cert.pem`"
                            : "it looks like binary DER; convert it with "
                              "`openssl pkey -inform der -out key.pem`";
  }
  return want_certificate ? "no -----BEGIN CERTIFICATE----- block"
                          : "no -----BEGIN PRIVATE KEY----- block";
}

// Every certificate of the chain, leaf first; at least one.
absl::StatusOr<std::vector<Certificate>> ParseChain(const std::string& pem,
                                                    const std::string& path) {
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  std::vector<Certificate> chain;
  // PEM_read_bio_X509 passes over blocks of other kinds (a key stored
  // with the chain) and fails at the end of the text, or on a certificate
  // block that does not parse.
  while (X509* cert =
             PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    chain.emplace_back(cert);
  }
  if (!OnlyEndOfInput()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(kCertFlag, path), ": certificate ", chain.size() + 1,
        " of the chain does not parse (OpenSSL: ", TakeOpenSslError(), ")"));
  }
  ERR_clear_error();
  if (chain.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(kCertFlag, path), " holds no PEM certificate (",
                     Guess(pem, /*want_certificate=*/true), ")"));
  }
  return chain;
}

absl::StatusOr<PrivateKey> ParseKey(const std::string& pem,
                                    const std::string& path) {
  // Checked first: decrypting would ask for a passphrase.
  if (absl::StrContains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(kKeyFlag, path),
        " holds an encrypted private key; hydra needs it unencrypted "
        "(`openssl pkey -in key.pem -out plain.pem` asks the passphrase "
        "once)"));
  }
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  PrivateKey key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key != nullptr) return key;
  // Judged by the text: OpenSSL 3's decoders report text without a key
  // block as "unsupported", like a key block they cannot read.
  if (!absl::StrContains(pem, "PRIVATE KEY-----")) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(Where(kKeyFlag, path), " holds no PEM private key (",
                     Guess(pem, /*want_certificate=*/false), ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Where(kKeyFlag, path),
                   ": the private key block does not parse (corrupt or "
                   "truncated? OpenSSL: ",
                   TakeOpenSslError(), ")"));
}

// Why the key is not the leaf's: it may be that of a later certificate (the
// chain in the wrong order).
std::string MismatchHint(const std::vector<Certificate>& chain, EVP_PKEY& key) {
  for (size_t i = 1; i < chain.size(); ++i) {
    const bool match = X509_check_private_key(chain[i].get(), &key) == 1;
    ERR_clear_error();
    if (match) {
      return absl::StrCat("the key is that of certificate ", i + 1,
                          " of the chain; the server's own certificate must "
                          "come first");
    }
  }
  return "the key belongs to another certificate";
}

// "2024-01-31 12:00:00 UTC", or OpenSSL's own text if it will not convert.
std::string FormatTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) == 1) {
    char text[32];
    if (std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0) {
      return text;
    }
  }
  return "an unreadable date";
}

// Clients refuse a certificate outside its validity period, but serving
// with it may still be meant (a test, clients that do not verify): warned.
std::vector<std::string> ValidityWarnings(const X509& leaf,
                                          const std::string& path) {
  std::vector<std::string> warnings;
  const ASN1_TIME* not_after = X509_get0_notAfter(&leaf);
  const ASN1_TIME* not_before = X509_get0_notBefore(&leaf);
  if (X509_cmp_current_time(not_after) < 0) {
    warnings.push_back(
        absl::StrCat("warning: ", Where(kCertFlag, path),
                     ": the certificate expired on ", FormatTime(not_after),
                     "; clients that verify it will refuse to connect"));
  } else if (X509_cmp_current_time(not_before) > 0) {
    warnings.push_back(absl::StrCat(
        "warning: ", Where(kCertFlag, path),
        ": the certificate is not valid before ", FormatTime(not_before),
        "; clients that verify it will refuse to connect"));
  }
  return warnings;
}

}  // namespace

absl::StatusOr<std::optional<TlsCredentials>> LoadTlsCredentials(
    const std::string& cert_path, const std::string& key_path) {
  if (cert_path.empty() && key_path.empty()) return std::nullopt;
  if (cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert and --tls_key go together: ",
                     cert_path.empty() ? kKeyFlag : kCertFlag, " is set but ",
                     cert_path.empty() ? kCertFlag : kKeyFlag, " is not"));
  }
  TlsCredentials tls;
  ASSIGN_OR_RETURN(tls.cert_chain_pem, ReadPemFile(kCertFlag, cert_path));
  ASSIGN_OR_RETURN(tls.private_key_pem, ReadPemFile(kKeyFlag, key_path));
  ASSIGN_OR_RETURN(const std::vector<Certificate> chain,
                   ParseChain(tls.cert_chain_pem, cert_path));
  ASSIGN_OR_RETURN(const PrivateKey key,
                   ParseKey(tls.private_key_pem, key_path));
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        Where(kKeyFlag, key_path), " does not match the certificate in ",
        kCertFlag, " (", cert_path, "): ", MismatchHint(chain, *key)));
  }
  tls.warnings = ValidityWarnings(*chain.front(), cert_path);
  return tls;
}

}  // namespace hydra::server
