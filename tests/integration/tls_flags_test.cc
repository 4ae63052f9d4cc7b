// Hardening (issue 15, item 10) end to end: `hydra serve` given a bad
// --tls_cert/--tls_key pair exits non-zero at once with a message naming
// the flag, the file and the fault, where it used to say only "cannot listen"
// (the cause in gRPC's log). No model is needed: the pair is checked before
// anything listens or loads.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_certificates.h"

namespace hydra {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::MakeCertificate;
using ::testing::Not;
using testing::TestCertificate;
using testing::WriteTextFile;

struct ServeRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
  double seconds = 0;
};

class TlsFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "tls_flags_test";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `hydra serve` on ephemeral ports with this pair and a model folder that
  // does not exist, under a 60 s guard.
  ServeRun Serve(const std::string& cert, const std::string& key) {
    const std::string cert_path = (dir_ / "cert.pem").string(),
                      key_path = (dir_ / "key.pem").string();
    WriteTextFile(cert_path, cert);
    WriteTextFile(key_path, key);
    const std::string command =
        std::string("timeout 60 ") + HYDRA_BINARY +
        " serve --model=/nonexistent/model" +
        " --host=127.0.0.1 --port=0 --metrics_port=0 --http_port=0" +
        " --tls_cert=" + cert_path + " --tls_key=" + key_path + " 2>&1";
    ServeRun run;
    const auto start = std::chrono::steady_clock::now();
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
      run.output.append(buffer, n);
    }
    const int status = pclose(pipe);
    run.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }
  // A pair that must be refused: exit 1 within seconds, the reason given,
  // and nothing about listening.
  void ExpectRefused(const std::string& cert, const std::string& key,
                     const std::string& reason) {
    const ServeRun run = Serve(cert, key);
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_LT(run.seconds, 10) << run.output;
    EXPECT_THAT(
        run.output,
        AllOf(HasSubstr("hydra serve: INVALID_ARGUMENT: "), HasSubstr(reason),
              Not(HasSubstr("cannot listen")), Not(HasSubstr("listening on"))));
  }
  std::string cert_path() const { return (dir_ / "cert.pem").string(); }
  std::string key_path() const { return (dir_ / "key.pem").string(); }

  fs::path dir_;
  const TestCertificate pair_ = MakeCertificate();
};

TEST_F(TlsFlagsTest, GarbageIsRefusedNamingTheFile) {
  ExpectRefused("garbage\n", pair_.key_pem,
                "--tls_cert: " + cert_path() + " holds no PEM certificate");
  ExpectRefused(pair_.cert_pem, "garbage\n",
                "--tls_key: " + key_path() + " holds no PEM private key");
}

TEST_F(TlsFlagsTest, AMismatchedKeyIsRefused) {
  ExpectRefused(pair_.cert_pem, MakeCertificate().key_pem,
                "--tls_key: " + key_path() +
                    " does not match the certificate in --tls_cert");
}

TEST_F(TlsFlagsTest, SwappedFilesAreRefusedWithTheHint) {
  ExpectRefused(pair_.key_pem, pair_.cert_pem,
                "were --tls_cert and --tls_key swapped?");
}

TEST_F(TlsFlagsTest, AnEmptyFileIsRefused) {
  ExpectRefused("", pair_.key_pem, "--tls_cert: " + cert_path() + " is empty");
}

// A good pair passes the check: the server goes on to listen, and stops
// only at the missing model.
TEST_F(TlsFlagsTest, AGoodPairGetsAsFarAsTheModel) {
  const ServeRun run = Serve(pair_.cert_pem, pair_.key_pem);
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output,
              AllOf(HasSubstr("listening on"), HasSubstr("/nonexistent/model"),
                    Not(HasSubstr("--tls_"))));
}

TEST_F(TlsFlagsTest, AnExpiredCertificateIsLoggedAsAWarning) {
  const TestCertificate expired = MakeCertificate("localhost", -7200, -3600);
  const ServeRun run = Serve(expired.cert_pem, expired.key_pem);
  EXPECT_THAT(run.output,
              AllOf(HasSubstr("[hydra] warning: --tls_cert: " + cert_path() +
                              ": the certificate expired on "),
                    HasSubstr("listening on")));
}

}  // namespace
}  // namespace hydra
