// hydra serve: the gRPC server on one model. Starts listening at once (health
// NOT_SERVING, calls UNAVAILABLE) and turns SERVING when the model is
// loaded. SIGTERM or SIGINT drains: health NOT_SERVING, new calls
// UNAVAILABLE, running requests finish within the grace period, exit 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/status_macros.h"
#include "engine/engine_factory.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/api_key.h"
#include "server/grpc/inference_service.h"
#include "server/grpc/reflection_service.h"
#include "server/grpc/wire.h"
#include "server/http/chat_formatter.h"
#include "server/http/http_front_end.h"
#include "server/metrics.h"
#include "server/tls_credentials.h"
#include "worker/non_finite_weights.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_FLAG(std::string, host, "127.0.0.1",
          "Address the gRPC and HTTP front ends listen on; 0.0.0.0 for every "
          "interface (what a container needs)");
ABSL_FLAG(int, port, 50051, "gRPC port");
ABSL_FLAG(int, metrics_port, 9400,
          "Prometheus /metrics port; 0 = no metrics endpoint");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "Address /metrics listens on; 0.0.0.0 for every interface");
ABSL_FLAG(int, tp, 1, "Tensor-parallel size (ranks the heads are split over)");
ABSL_FLAG(int64_t, kv_cache_bytes, int64_t{512} << 20,
          "KV cache memory budget per rank, bytes (--device=cpu; on cuda "
          "the pool is sized by --gpu_memory_fraction)");
ABSL_FLAG(int, block_size, 16, "Tokens per KV block");
ABSL_FLAG(int, max_batched_tokens, 2048, "Most tokens computed in one step");
ABSL_FLAG(int, max_running, 256, "Most sequences running at once");
ABSL_FLAG(double, max_step_ms, 0,
          "Step-time budget (ms): while streams decode, prefill chunks are "
          "sized so the predicted step stays within it (the inter-token "
          "latency a long prompt may cause); 0 = no time budget");
ABSL_FLAG(int, max_partial_prefills, 8,
          "Most prompts in prefill at once (short prompts need not wait "
          "behind long ones)");
ABSL_FLAG(int, max_waiting, 1024,
          "Most requests waiting for admission; beyond it calls get "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(bool, prefix_cache, true,
          "Reuse the KV blocks of shared prompt prefixes");
ABSL_FLAG(double, pinned_kv_fraction, 0.25,
          "Share of the KV blocks that prefixes warmed or sent with "
          "retention=pinned keep from eviction; pinned blocks beyond it are "
          "evicted after all others");
ABSL_FLAG(int64_t, kv_host_cache_bytes, 0,
          "Host memory per rank for KV blocks evicted from the pool (a tier "
          "below it: loaded back instead of recomputed); 0 = none");
ABSL_FLAG(std::string, kv_disk_cache_dir, "",
          "Folder for a disk tier of KV blocks, kept across restarts (each "
          "configuration in its own subfolder); empty = none");
ABSL_FLAG(int64_t, kv_disk_cache_bytes, int64_t(8) << 30,
          "Most bytes per rank the disk tier keeps (least recently used "
          "blocks are deleted)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain; with --tls_key, serve TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, api_key, "",
          "When set, calls must send 'authorization: Bearer <key>' (health "
          "stays open); visible in ps: prefer --api_key_file");
ABSL_FLAG(std::string, api_key_file, "",
          "File holding the API key (a mounted Secret); as --api_key");
ABSL_FLAG(std::string, device, "cpu",
          "Where the forward pass runs: cpu, or cuda (one GPU per rank; "
          "needs a build with -DHYDRA_CUDA=ON)");
ABSL_FLAG(double, gpu_memory_fraction, 0.9,
          "--device=cuda: share of each GPU's memory hydra may use; the KV "
          "pool takes what weights and workspace leave of it");
ABSL_FLAG(int, http_port, 8000,
          "OpenAI-compatible HTTP port (same --host, TLS and --api_key as "
          "gRPC); 0 = no HTTP front end");
ABSL_FLAG(std::string, chat_template, "",
          "Chat template file for /v1/chat/completions; default: the model "
          "folder's tokenizer_config.json chat_template, if any");
ABSL_FLAG(int, http_io_threads, 2, "Threads serving HTTP connections");
ABSL_FLAG(int64_t, http_max_body_bytes, int64_t{4} << 20,
          "Largest HTTP request body; larger ones get 413");
ABSL_FLAG(int, http_header_timeout_ms, 10000,
          "An HTTP request's header must arrive within this (also the "
          "keep-alive idle time); else 408 and the connection is closed");
ABSL_FLAG(int, http_body_timeout_ms, 30000,
          "An HTTP request's body must arrive within this after its header");
ABSL_FLAG(int, drain_seconds, 30,
          "On SIGTERM, how long running requests may take to finish");

namespace hydra::cli {
namespace {

using server::MetricsOptions;
using server::ServerMetrics;
using server::grpc::InferenceService;

constexpr char kServiceName[] = "hydra.v1.Inference";
constexpr char kVersion[] = "0.3.0";

// Plaintext without --tls_cert; else the checked pair.
std::shared_ptr<grpc::ServerCredentials> Credentials(
    const std::optional<server::TlsCredentials>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back(
      {tls->private_key_pem, tls->cert_chain_pem});
  return grpc::SslServerCredentials(options);
}

// The API key from --api_key or --api_key_file (not both); empty: none.
absl::StatusOr<std::string> ApiKey() {
  const std::string flag = absl::GetFlag(FLAGS_api_key),
                    file = absl::GetFlag(FLAGS_api_key_file);
  if (!flag.empty() && !file.empty()) {
    return absl::InvalidArgumentError(
        "--api_key and --api_key_file: set one of them, not both");
  }
  if (file.empty()) return flag;
  return server::ReadApiKeyFile(file);
}

void Log(const std::string& line) {
  std::fprintf(stderr, "[hydra] %s\n", line.c_str());
  std::fflush(stderr);
}

// The load-time warning of NaN or Inf weights, if any; under tensor
// parallelism each rank warns of its own shard.
void LogNonFiniteWeights(const worker::NonFiniteWeights& non_finite,
                         const worker::Communicator* comm) {
  const std::string warning = worker::NonFiniteWeightsWarning(non_finite);
  if (warning.empty()) return;
  Log(comm == nullptr ? warning
                      : absl::StrCat("rank ", comm->rank(), ": ", warning));
}

// The OpenAI-compatible HTTP front end, or nullptr with --http_port=0.
absl::StatusOr<std::unique_ptr<server::http::HttpFrontEnd>> StartHttp(
    const std::string& model_name, const std::string& model_dir,
    const std::string& api_key,
    const std::optional<server::TlsCredentials>& tls, ServerMetrics& metrics) {
  const int port = absl::GetFlag(FLAGS_http_port);
  if (port == 0) return nullptr;
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError("--http_port: must be in [0, 65535]");
  }
  server::http::HttpServerOptions server;
  server.host = absl::GetFlag(FLAGS_host);
  server.on_rejected = [&metrics](absl::StatusCode code) {
    metrics.OnRejected(code, server::FrontEnd::kHttp);
  };
  server.port = port;
  server.io_threads = absl::GetFlag(FLAGS_http_io_threads);
  server.max_body_bytes = static_cast<size_t>(
      std::max<int64_t>(1, absl::GetFlag(FLAGS_http_max_body_bytes)));
  server.header_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_http_header_timeout_ms));
  server.body_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_http_body_timeout_ms));
  if (tls.has_value()) {
    server.tls_cert_pem = tls->cert_chain_pem;
    server.tls_key_pem = tls->private_key_pem;
  }
  ASSIGN_OR_RETURN(server::http::ChatSetup chat,
                   server::http::LoadChatFormatter(
                       absl::GetFlag(FLAGS_chat_template), model_dir));
  Log(chat.note);
  server::http::OpenAiApiOptions api;
  api.model_name = model_name;
  api.api_key = api_key;
  api.on_rejected = server.on_rejected;
  api.version = kVersion;
  api.chat_formatter = std::move(chat.format);
  api.bos_text = std::move(chat.bos_text);
  return server::http::HttpFrontEnd::Start(
      std::move(server), std::move(api),
      [&metrics](const engine::EngineOutput& out, absl::Time previous) {
        metrics.OnOutput(out, previous, server::FrontEnd::kHttp);
      });
}

}  // namespace

absl::Status RunServe() {
  const int tp = absl::GetFlag(FLAGS_tp);
  if (tp < 1) return absl::InvalidArgumentError("--tp: must be at least 1");
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError("--port: must be in [0, 65535]");
  }
  // Signals are taken by sigwait below, never by a handler on a random
  // thread. Blocked before MPI starts its threads, so they inherit the mask;
  // worker ranks never take them (mpirun forwards SIGTERM to every rank) and
  // leave when rank 0 tells them to.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // raised by the engine when a peer fails
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // A world of one needs no MPI at all; under mpirun, rank 0 serves and the
  // other ranks run the worker loop over its step plans.
  std::unique_ptr<worker::Communicator> comm;
  if (tp > 1 || worker::LaunchedByMpi()) {
    ASSIGN_OR_RETURN(comm, worker::CreateMpiCommunicator());
    if (comm->size() != tp) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tp=", tp, " but ", comm->size(),
                       " ranks were started; launch with the same N: mpirun "
                       "-np N hydra serve --tp=N"));
    }
  }
  engine::EngineOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.kv_cache_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_kv_cache_bytes));
  options.block_size = absl::GetFlag(FLAGS_block_size);
  options.scheduling.max_batched_tokens =
      absl::GetFlag(FLAGS_max_batched_tokens);
  options.scheduling.max_running = absl::GetFlag(FLAGS_max_running);
  options.scheduling.max_step_ms = absl::GetFlag(FLAGS_max_step_ms);
  options.scheduling.max_partial_prefills =
      absl::GetFlag(FLAGS_max_partial_prefills);
  options.max_waiting = absl::GetFlag(FLAGS_max_waiting);
  options.enable_prefix_cache = absl::GetFlag(FLAGS_prefix_cache);
  options.pinned_kv_fraction = absl::GetFlag(FLAGS_pinned_kv_fraction);
  if (!(options.pinned_kv_fraction >= 0 && options.pinned_kv_fraction <= 1)) {
    return absl::InvalidArgumentError(
        "--pinned_kv_fraction: must be in [0, 1]");
  }
  const int64_t host_bytes = absl::GetFlag(FLAGS_kv_host_cache_bytes);
  const int64_t disk_bytes = absl::GetFlag(FLAGS_kv_disk_cache_bytes);
  if (host_bytes < 0) {
    return absl::InvalidArgumentError(
        "--kv_host_cache_bytes: must be 0 (no host tier) or more");
  }
  if (disk_bytes <= 0) {
    return absl::InvalidArgumentError(
        "--kv_disk_cache_bytes: must be positive");
  }
  options.kv_tiers = {static_cast<size_t>(host_bytes),
                      absl::GetFlag(FLAGS_kv_disk_cache_dir),
                      static_cast<size_t>(disk_bytes)};
  options.comm = comm.get();
  options.device = absl::GetFlag(FLAGS_device);
  options.gpu_memory_fraction = absl::GetFlag(FLAGS_gpu_memory_fraction);
  RETURN_IF_ERROR(ApplyEngineFlags(options));
  if (options.device == "cuda" && (comm == nullptr || comm->rank() == 0)) {
    Log(
        absl::StrCat("--device=cuda: the KV pool takes what weights and "
                     "workspace leave of --gpu_memory_fraction=",
                     options.gpu_memory_fraction,
                     " of each GPU; --kv_cache_bytes is not used"));
  }
  if (comm != nullptr && comm->rank() != 0) {
    ASSIGN_OR_RETURN(auto runner, engine::LoadWorkerRunner(options));
    Log(absl::StrCat("rank ", comm->rank(), " of ", tp, ": worker ready"));
    LogNonFiniteWeights(runner->non_finite_weights(), comm.get());
    RETURN_IF_ERROR(runner->RunWorkerLoop());
    Log(absl::StrCat("rank ", comm->rank(), ": stopped"));
    return absl::OkStatus();
  }

  // Before anything listens: gRPC would report a bad pair only as "cannot
  // listen", the cause in its own log.
  ASSIGN_OR_RETURN(const std::optional<server::TlsCredentials> tls,
                   server::LoadTlsCredentials(absl::GetFlag(FLAGS_tls_cert),
                                              absl::GetFlag(FLAGS_tls_key)));
  if (tls.has_value()) {
    for (const std::string& warning : tls->warnings) Log(warning);
  }
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  const std::string model_name =
      std::filesystem::path(model_dir).filename().string();
  MetricsOptions metrics_options;
  if (absl::GetFlag(FLAGS_metrics_port) > 0) {
    metrics_options.listen_address =
        absl::StrCat(absl::GetFlag(FLAGS_metrics_host), ":",
                     absl::GetFlag(FLAGS_metrics_port));
  }
  metrics_options.model_name = model_name;
  metrics_options.max_step_ms = options.scheduling.max_step_ms;
  metrics_options.tensor_parallel_size = absl::GetFlag(FLAGS_tp);
  metrics_options.version = kVersion;
  ASSIGN_OR_RETURN(std::unique_ptr<ServerMetrics> metrics,
                   ServerMetrics::Create(metrics_options));

  ASSIGN_OR_RETURN(const std::string api_key, ApiKey());
  server::grpc::QuietProtobufUtf8Errors();
  InferenceService service({
      .model_name = model_name,
      .tensor_parallel_size = absl::GetFlag(FLAGS_tp),
      .api_key = api_key,
      .on_output =
          [&metrics](const engine::EngineOutput& out, absl::Time previous) {
            metrics->OnOutput(out, previous);
          },
      .on_rejected =
          [&metrics](absl::StatusCode code) { metrics->OnRejected(code); },
  });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const auto credentials = Credentials(tls);
  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", port);
  int bound_port = 0;
  // gRPC sets SO_REUSEPORT by default: a second server on the same port
  // would start and take half the new connections. Refuse it instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, credentials, &bound_port);
  builder.RegisterService(&service);
  server::grpc::ReflectionService reflection(
      {kServiceName, "grpc.health.v1.Health",
       "grpc.reflection.v1alpha.ServerReflection"},
      api_key);
  builder.RegisterService(&reflection);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", address,
        " (is another process, perhaps another hydra, using --port?)"));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(kServiceName, false);
  health->SetServingStatus(false);
  auto http = StartHttp(model_name, model_dir, api_key, tls, *metrics);
  if (!http.ok()) {
    server->Shutdown();
    return http.status();
  }
  Log(absl::StrCat("listening on ", absl::GetFlag(FLAGS_host), ":", bound_port,
                   *http == nullptr
                       ? std::string()
                       : absl::StrCat(" (HTTP ", (*http)->port(), ")"),
                   "; loading ", model_dir));

  const absl::Time load_start = absl::Now();
  auto engine = engine::LoadEngine(options);
  if (!engine.ok()) {
    server->Shutdown();
    return engine.status();
  }
  Log(DescribeLoadedEngine(**engine, absl::Now() - load_start));
  LogNonFiniteWeights((*engine)->non_finite_weights(), comm.get());
  // A failed tensor-parallel peer leaves nothing to serve with: stop taking
  // calls at once and wake the main thread, which exits non-zero so an
  // orchestrator restarts the group.
  (*engine)->SetFatalErrorHandler([&](const absl::Status& status) {
    Log(absl::StrCat("fatal: ", status.ToString()));
    health->SetServingStatus(kServiceName, false);
    health->SetServingStatus(false);
    service.StartDraining();
    if (*http != nullptr) (*http)->StartDraining();
    kill(getpid(), SIGUSR1);
  });
  (*engine)->SetStepObserver(
      [&metrics](const engine::StepReport& step) { metrics->OnStep(step); });
  if (const std::string note =
          engine::ShortenedContextNote(options, **engine, "--kv_cache_bytes");
      !note.empty()) {
    Log(note);
  }
  const engine::EngineConfig& ec = (*engine)->config();
  // From the runner: a device pool may hold BF16 where the CPU holds fp32.
  const int64_t kv_bytes = (*engine)->kv_cache_bytes();

  // Gauges follow the engine even when no step runs.
  std::atomic<bool> stop_stats{false};
  std::thread stats_thread([&] {
    while (!stop_stats.load()) {
      metrics->UpdateEngineStats((*engine)->stats(), kv_bytes,
                                 absl::GetFlag(FLAGS_tp));
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  service.AttachEngine(engine->get());
  if (*http != nullptr) (*http)->AttachEngine(engine->get());
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);
  Log(absl::StrCat(
      "serving ", model_name, " (", (*engine)->model_config().architecture,
      ") on ", absl::GetFlag(FLAGS_host), ":", bound_port, "; max_model_len ",
      ec.max_model_len, "; KV capacity ",
      int64_t{ec.num_blocks} * ec.block_size, " tokens in ", ec.num_blocks,
      " blocks of ", ec.block_size, "; metrics ",
      metrics_options.listen_address.empty()
          ? std::string("off")
          : "on http://" + metrics_options.listen_address + "/metrics"));

  int signal = 0;
  sigwait(&signals, &signal);
  if (signal == SIGUSR1) {
    // No orderly exit: destructors would wait in collectives on a broken
    // world. Leaving at once makes mpirun end the rest of the job.
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(1));
    Log("a tensor-parallel peer failed; exiting with status 1");
    std::_Exit(1);
  }
  Log(absl::StrCat("signal ", signal, ": draining (up to ",
                   absl::GetFlag(FLAGS_drain_seconds), " s)"));
  health->SetServingStatus(kServiceName, false);
  health->SetServingStatus(false);
  service.StartDraining();
  if (*http != nullptr) (*http)->StartDraining();
  const absl::Time give_up =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  while (absl::Now() < give_up) {
    const engine::EngineStats s = (*engine)->stats();
    if (s.running == 0 && s.waiting == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  // Calls still open after the grace period are cancelled by the shutdown.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  // Before the engine goes: closing connections cancels their requests.
  if (*http != nullptr) (*http)->Stop();
  stop_stats.store(true);
  stats_thread.join();
  engine->reset();
  Log("stopped");
  return absl::OkStatus();
}

}  // namespace hydra::cli
