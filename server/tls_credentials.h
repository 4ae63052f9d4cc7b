// The certificate and key of `hydra serve --tls_cert --tls_key`, read and
// checked at start-up with OpenSSL before either front end is given them.
// gRPC only reports a bad pair as "cannot listen" (the cause in its own log),
// and the HTTP front end would fail on the first handshake; here each fault
// is refused naming the flag, the file and what is wrong with it.
#ifndef HYDRA_SERVER_TLS_CREDENTIALS_H_
#define HYDRA_SERVER_TLS_CREDENTIALS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hydra::server {

struct TlsCredentials {
  // The files' PEM text as read: the certificate chain (leaf first) and the
  // private key of the leaf.
  std::string cert_chain_pem;
  std::string private_key_pem;
  // Complete log lines ("warning: ...") for faults that do not stop serving
  // but that clients verifying the certificate will refuse: a leaf
  // certificate that has expired or is not yet valid.
  std::vector<std::string> warnings;
};

// Reads `cert_path` (--tls_cert) and `key_path` (--tls_key). Both empty:
// nullopt, serve plaintext. Otherwise both must be set, and the checks are:
// each file is readable and not empty; the certificate file holds at least
// one PEM certificate and every certificate block in it parses; the key file
// holds an unencrypted PEM private key that parses; the key is the leaf
// certificate's. A fault is InvalidArgument (NotFound, PermissionDenied for
// an unreadable file) naming the flag and the file, with a hint where one
// fits (a key given as the certificate and the other way round: swapped
// flags).
absl::StatusOr<std::optional<TlsCredentials>> LoadTlsCredentials(
    const std::string& cert_path, const std::string& key_path);

}  // namespace hydra::server

#endif  // HYDRA_SERVER_TLS_CREDENTIALS_H_
