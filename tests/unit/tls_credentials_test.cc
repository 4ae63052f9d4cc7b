// Hardening (issue 15, item 10): every fault of a --tls_cert/--tls_key pair
// is refused at start-up naming the flag, the file and what is wrong, on
// certificates made at test time.
#include "server/tls_credentials.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_certificates.h"

namespace hydra::server {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeCertificate;
using testing::TestCertificate;
using testing::WriteTextFile;

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::path(::testing::TempDir()) / "tls_credentials_test" / info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the two files and loads them.
  absl::StatusOr<std::optional<TlsCredentials>> Load(const std::string& cert,
                                                     const std::string& key) {
    WriteTextFile(cert_path(), cert);
    WriteTextFile(key_path(), key);
    return LoadTlsCredentials(cert_path(), key_path());
  }
  // The message of a load expected to fail with InvalidArgument.
  std::string Refusal(const std::string& cert, const std::string& key) {
    const auto loaded = Load(cert, key);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument)
        << loaded.status();
    return std::string(loaded.status().message());
  }
  std::string cert_path() const { return (dir_ / "cert.pem").string(); }
  std::string key_path() const { return (dir_ / "key.pem").string(); }

  fs::path dir_;
  const TestCertificate pair_ = MakeCertificate();
};

TEST_F(TlsCredentialsTest, NoFlagsMeanPlaintext) {
  const auto loaded = LoadTlsCredentials("", "");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(TlsCredentialsTest, OneFlagWithoutTheOtherIsRefused) {
  WriteTextFile(cert_path(), pair_.cert_pem);
  const auto cert_only = LoadTlsCredentials(cert_path(), "");
  EXPECT_EQ(cert_only.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cert_only.status().message(),
              HasSubstr("--tls_cert is set but --tls_key is not"));
  const auto key_only = LoadTlsCredentials("", key_path());
  EXPECT_THAT(key_only.status().message(),
              HasSubstr("--tls_key is set but --tls_cert is not"));
}

TEST_F(TlsCredentialsTest, AMatchingPairIsReturnedAsRead) {
  const auto loaded = Load(pair_.cert_pem, pair_.key_pem);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->cert_chain_pem, pair_.cert_pem);
  EXPECT_EQ((*loaded)->private_key_pem, pair_.key_pem);
  EXPECT_THAT((*loaded)->warnings, IsEmpty());
}

TEST_F(TlsCredentialsTest, AChainWithItsLeafFirstIsAccepted) {
  const TestCertificate ca = MakeCertificate("test CA");
  const TestCertificate leaf = MakeCertificate("localhost", -60, 3600, &ca);
  const auto loaded = Load(leaf.cert_pem + ca.cert_pem, leaf.key_pem);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->cert_chain_pem, leaf.cert_pem + ca.cert_pem);
}

TEST_F(TlsCredentialsTest, AChainInTheWrongOrderIsRefusedSayingSo) {
  const TestCertificate ca = MakeCertificate("test CA");
  const TestCertificate leaf = MakeCertificate("localhost", -60, 3600, &ca);
  EXPECT_THAT(Refusal(ca.cert_pem + leaf.cert_pem, leaf.key_pem),
              AllOf(HasSubstr("--tls_key: " + key_path() +
                              " does not match the certificate in --tls_cert"),
                    HasSubstr("certificate 2 of the chain"),
                    HasSubstr("must come first")));
}

TEST_F(TlsCredentialsTest, GarbageCertificateIsRefused) {
  EXPECT_EQ(Refusal("this is not a certificate\n", pair_.key_pem),
            "--tls_cert: " + cert_path() +
                " holds no PEM certificate (no -----BEGIN CERTIFICATE----- "
                "block)");
}

TEST_F(TlsCredentialsTest, GarbageKeyIsRefused) {
  EXPECT_EQ(Refusal(pair_.cert_pem, "hunter2\n"),
            "--tls_key: " + key_path() +
                " holds no PEM private key (no -----BEGIN PRIVATE KEY----- "
                "block)");
}

TEST_F(TlsCredentialsTest, ACorruptCertificateBlockIsRefusedByPosition) {
  const std::string corrupt =
      "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
      "-----END CERTIFICATE-----\n";
  EXPECT_THAT(Refusal(pair_.cert_pem + corrupt, pair_.key_pem),
              AllOf(HasSubstr("--tls_cert: " + cert_path()),
                    HasSubstr("certificate 2 of the chain does not parse")));
  EXPECT_THAT(Refusal(corrupt, pair_.key_pem),
              HasSubstr("certificate 1 of the chain does not parse"));
}

TEST_F(TlsCredentialsTest, ACorruptKeyIsRefused) {
  const std::string corrupt =
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  EXPECT_THAT(Refusal(pair_.cert_pem, corrupt),
              HasSubstr("--tls_key: " + key_path() +
                        ": the private key block does not parse"));
}

TEST_F(TlsCredentialsTest, AKeyOfAnotherCertificateIsRefused) {
  const TestCertificate other = MakeCertificate();
  EXPECT_EQ(Refusal(pair_.cert_pem, other.key_pem),
            "--tls_key: " + key_path() +
                " does not match the certificate in --tls_cert (" +
                cert_path() + "): the key belongs to another certificate");
}

TEST_F(TlsCredentialsTest, SwappedFlagsAreNamed) {
  EXPECT_EQ(Refusal(pair_.key_pem, pair_.cert_pem),
            "--tls_cert: " + cert_path() +
                " holds no PEM certificate (it looks like a private key: were "
                "--tls_cert and --tls_key swapped?)");
  // The certificate given twice: the key file is the one at fault.
  EXPECT_EQ(Refusal(pair_.cert_pem, pair_.cert_pem),
            "--tls_key: " + key_path() +
                " holds no PEM private key (it looks like a certificate: were "
                "--tls_cert and --tls_key swapped?)");
}

TEST_F(TlsCredentialsTest, EmptyFilesAreRefused) {
  EXPECT_EQ(Refusal("", pair_.key_pem),
            "--tls_cert: " + cert_path() + " is empty");
  EXPECT_EQ(Refusal(pair_.cert_pem, "\n  \n"),
            "--tls_key: " + key_path() + " is empty");
}

TEST_F(TlsCredentialsTest, AMissingFileIsNotFoundNamingTheFlag) {
  WriteTextFile(key_path(), pair_.key_pem);
  const std::string missing = (dir_ / "nowhere.pem").string();
  const auto loaded = LoadTlsCredentials(missing, key_path());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(loaded.status().message(),
              AllOf(HasSubstr("--tls_cert: "), HasSubstr(missing)));
  const auto directory = LoadTlsCredentials(dir_.string(), key_path());
  EXPECT_THAT(directory.status().message(),
              AllOf(HasSubstr("--tls_cert: "), HasSubstr("a directory")));
}

TEST_F(TlsCredentialsTest, BinaryDerIsRefusedWithTheConversion) {
  EXPECT_THAT(Refusal(pair_.cert_der, pair_.key_pem),
              AllOf(HasSubstr("holds no PEM certificate"),
                    HasSubstr("binary DER"), HasSubstr("openssl x509")));
}

TEST_F(TlsCredentialsTest, AnEncryptedKeyIsRefusedWithoutAPrompt) {
  EXPECT_THAT(
      Refusal(pair_.cert_pem, testing::EncryptedKey(pair_.key_pem, "secret")),
      AllOf(HasSubstr("--tls_key: " + key_path()),
            HasSubstr("holds an encrypted private key")));
}

TEST_F(TlsCredentialsTest, AnExpiredCertificateServesWithAWarning) {
  const TestCertificate expired = MakeCertificate("localhost", -7200, -3600);
  const auto loaded = Load(expired.cert_pem, expired.key_pem);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_THAT(
      (*loaded)->warnings,
      ElementsAre(AllOf(
          HasSubstr("warning: --tls_cert: " + cert_path() +
                    ": the certificate expired on "),
          HasSubstr(" UTC; clients that verify it will refuse to connect"))));
}

TEST_F(TlsCredentialsTest, ACertificateNotYetValidServesWithAWarning) {
  const TestCertificate future = MakeCertificate("localhost", 3600, 7200);
  const auto loaded = Load(future.cert_pem, future.key_pem);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT((*loaded)->warnings,
              ElementsAre(HasSubstr("the certificate is not valid before ")));
}

}  // namespace
}  // namespace hydra::server
