// A real `hydra serve` process for end-to-end tests: started on free
// loopback ports, stopped with SIGTERM, its exit status checked.
#ifndef HYDRA_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define HYDRA_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "hydra/v1/inference.grpc.pb.h"

namespace hydra::testing {

// `n` distinct free loopback ports. The sockets stay bound until all are
// picked: closing each before the next lets the kernel hand out the same
// port twice, and then the server's second listener fails to bind.
inline std::vector<int> FreePorts(int n) {
  std::vector<int> fds, ports;
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool accepted =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return accepted;
}

// GET http://127.0.0.1:port/path, body only ("" on failure).
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    response.append(buf, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the first sample line starting with `series` (name and
// labels exactly as exposed), if any.
inline std::optional<double> MetricValue(const std::string& exposition,
                                         const std::string& series) {
  size_t pos = 0;
  while ((pos = exposition.find(series, pos)) != std::string::npos) {
    if ((pos == 0 || exposition[pos - 1] == '\n') &&
        exposition[pos + series.size()] == ' ') {
      return std::strtod(exposition.c_str() + pos + series.size() + 1, nullptr);
    }
    pos += series.size();
  }
  return std::nullopt;
}

class ServerProcess {
 public:
  // Starts `binary serve --model=model_dir` plus `extra` flags.
  // `launcher` (e.g. mpirun and its flags) goes before the binary.
  ServerProcess(const std::string& binary, const std::string& model_dir,
                std::vector<std::string> extra = {},
                std::shared_ptr<grpc::ChannelCredentials> credentials =
                    grpc::InsecureChannelCredentials(),
                std::vector<std::string> launcher = {})
      : credentials_(std::move(credentials)) {
    args_ = std::move(launcher);
    args_.insert(args_.end(),
                 {binary, "serve", "--model=" + model_dir, "--host=127.0.0.1",
                  "--kv_cache_bytes=67108864", "--http_port=0"});
    args_.insert(args_.end(), extra.begin(), extra.end());
    Launch();
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Waits until the model is loaded (GetModelInfo stops saying UNAVAILABLE).
  // With `api_key`, the readiness call carries it.
  bool WaitReady(std::chrono::seconds timeout = std::chrono::seconds(60),
                 const std::string& api_key = "") {
    auto stub = NewStub();
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      // No RPC before the port accepts: a refused connection puts the
      // channel into reconnect backoff (1 s, growing 1.6x), which would add
      // seconds to every test.
      if (Accepts(port_)) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(1));
        if (!api_key.empty())
          context.AddMetadata("authorization", "Bearer " + api_key);
        v1::ModelInfo info;
        if (stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok())
          return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (!Relaunch(status)) return false;  // it died
        stub = NewStub();
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // SIGTERM, then the exit code (-1 if it had to be killed or died by signal).
  int Stop(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    kill(pid_, SIGTERM);
    return Wait(timeout);
  }
  // Waits for the process to exit by itself; its exit code, or -1.
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < give_up) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void SendSignal(int signal) { kill(pid_, signal); }
  // The launched process's pid (mpirun's, under a launcher).
  pid_t pid() const { return pid_; }

  std::unique_ptr<v1::Inference::Stub> NewStub() {
    return v1::Inference::NewStub(channel_);
  }
  int port() const { return port_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::string Metrics() const { return HttpGet(metrics_port_, "/metrics"); }
  // Waits until the metric reaches `value` (gauges refresh every 200 ms).
  bool WaitMetric(
      const std::string& series, double value,
      std::chrono::seconds timeout = std::chrono::seconds(5)) const {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      if (MetricValue(Metrics(), series) == value) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  static constexpr int kMaxRelaunches = 3;

  // Another process may take a port between FreePorts and the bind; a
  // fresh pair of ports gets past that. A server that dies for any other
  // reason dies again and the test still fails.
  bool Relaunch(int wait_status) {
    if (++relaunches_ > kMaxRelaunches) return false;
    std::fprintf(stderr,
                 "server exited before it was ready (wait status %d); "
                 "relaunching on new ports\n",
                 wait_status);
    Launch();
    return true;
  }

  void Launch() {
    const std::vector<int> ports = FreePorts(2);
    port_ = ports[0];
    metrics_port_ = ports[1];
    std::vector<std::string> args = args_;
    args.push_back("--port=" + std::to_string(port_));
    args.push_back("--metrics_port=" + std::to_string(metrics_port_));
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), credentials_);
  }

  std::vector<std::string> args_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  int relaunches_ = 0;
  int port_ = 0;
  int metrics_port_ = 0;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace hydra::testing

#endif  // HYDRA_TESTS_INTEGRATION_SERVER_PROCESS_H_
