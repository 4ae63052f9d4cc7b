// Certificates and keys made at test time with the OpenSSL API: no openssl
// command needed and no key material in the repository, and validity
// periods (an expired certificate) that the command cannot easily make.
#ifndef HYDRA_TESTS_UNIT_TEST_CERTIFICATES_H_
#define HYDRA_TESTS_UNIT_TEST_CERTIFICATES_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace hydra::testing {

struct TestCertificate {
  std::string cert_pem;  // one PEM certificate
  std::string key_pem;   // its PKCS#8 PEM private key, unencrypted
  std::string cert_der;  // the same certificate in binary DER
};

namespace certificates_internal {

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

// A failure here is a broken OpenSSL, not a finding of the test.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test certificate: OpenSSL failed: %s\n", what);
    std::abort();
  }
}

inline std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size);
}

inline Owned<BIO> ReadBio(const std::string& text) {
  return Owned<BIO>(BIO_new_mem_buf(text.data(), int(text.size())));
}

}  // namespace certificates_internal

// A fresh P-256 key and a certificate for CN=`name` (subjectAltName
// localhost and 127.0.0.1) valid from now + `not_before_s` to now +
// `not_after_s` seconds: self-signed, or signed by `issuer`.
inline TestCertificate MakeCertificate(
    const std::string& name = "localhost", long not_before_s = -3600,
    long not_after_s = 86400, const TestCertificate* issuer = nullptr) {
  using namespace certificates_internal;
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen");
  Owned<X509> cert(X509_new());
  Check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_s);
  Check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      subject, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(
      nullptr, &context, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  Check(san != nullptr && X509_add_ext(cert.get(), san, -1) == 1, "SAN");
  X509_EXTENSION_free(san);
  Owned<X509> issuer_cert;
  Owned<EVP_PKEY> issuer_key;
  if (issuer != nullptr) {
    issuer_cert.reset(PEM_read_bio_X509(ReadBio(issuer->cert_pem).get(),
                                        nullptr, nullptr, nullptr));
    issuer_key.reset(PEM_read_bio_PrivateKey(ReadBio(issuer->key_pem).get(),
                                             nullptr, nullptr, nullptr));
    Check(issuer_cert != nullptr && issuer_key != nullptr, "issuer");
  }
  Check(X509_set_issuer_name(cert.get(),
                             issuer != nullptr
                                 ? X509_get_subject_name(issuer_cert.get())
                                 : subject) == 1,
        "X509_set_issuer_name");
  Check(X509_sign(cert.get(), issuer != nullptr ? issuer_key.get() : key.get(),
                  EVP_sha256()) > 0,
        "X509_sign");

  TestCertificate out;
  Owned<BIO> cert_bio(BIO_new(BIO_s_mem())), key_bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1, "write cert");
  Check(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0,
                                 nullptr, nullptr) == 1,
        "write key");
  out.cert_pem = BioText(cert_bio.get());
  out.key_pem = BioText(key_bio.get());
  unsigned char* der = nullptr;
  const int der_size = i2d_X509(cert.get(), &der);
  Check(der_size > 0, "i2d_X509");
  out.cert_der.assign(reinterpret_cast<char*>(der), der_size);
  OPENSSL_free(der);
  return out;
}

// `key_pem` encrypted with AES-128-CBC under `passphrase` (PKCS#8).
inline std::string EncryptedKey(const std::string& key_pem,
                                const std::string& passphrase) {
  using namespace certificates_internal;
  Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(ReadBio(key_pem).get(), nullptr,
                                              nullptr, nullptr));
  Check(key != nullptr, "read key");
  Owned<BIO> out(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), EVP_aes_128_cbc(),
                                      passphrase.data(), int(passphrase.size()),
                                      nullptr, nullptr) == 1,
        "encrypt key");
  return BioText(out.get());
}

inline void WriteTextFile(const std::filesystem::path& path,
                          const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace hydra::testing

#endif  // HYDRA_TESTS_UNIT_TEST_CERTIFICATES_H_
