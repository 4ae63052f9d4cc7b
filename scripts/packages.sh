# shellcheck shell=bash
# shellcheck disable=SC2034  # the arrays are used by the scripts that source this file
# The Debian 12 packages hydra needs, in one place, by use. Sourced by
# scripts/setup.sh: a developer's machine and CI get build + runtime + test,
# the container image (deploy/docker/Dockerfile) gets build in its build
# stage and runtime + image in its final stage, through
# `scripts/setup.sh --packages-only GROUP...`. Add a package here, never in
# the Dockerfile.

# Compile and link hydra (GoogleTest and Google Benchmark included: the CMake
# configure step requires them); xz-utils packs the GPU bundle
# (scripts/gpu_bundle.sh --pack). The HTTP front end (server/http) uses
# header-only Boost.Beast/Asio (libboost-dev) and OpenSSL for its TLS.
BUILD_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates xz-utils
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libopenmpi-dev openmpi-bin prometheus-cpp-dev
  libsentencepiece-dev nlohmann-json3-dev libre2-dev libicu-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev  # header-only Boost.Beast/Asio: the HTTP front end, hydra-bench --api=openai
  libssl-dev  # the HTTP front end's TLS
)

# What the built `hydra` binary and its SentencePiece plugin load at run time
# (`ldd build/cli/hydra build/lib/libhydra_sentencepiece.so`, `dpkg -S`),
# plus openmpi-bin for mpirun/orted in tensor-parallel runs. Their own
# dependencies (libgrpc29, libre2-9, libhwloc15, ...) come with them.
RUNTIME_PACKAGES=(
  libgrpc++1.51 libprotobuf32 libabsl20220623
  libopenmpi3 openmpi-bin
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  libsentencepiece0 libgomp1 libre2-9 libicu72
)

# Tests and their tools: the integration tests (Prometheus, the Python
# client, network namespaces), hydra-bench's plots, the NumPy reference
# forward pass (tests/reference), and the offline checks of deploy/
# (tests/deploy: yamllint, shellcheck; promtool comes with prometheus),
# and the fuzz and sanitizer build (scripts/fuzz.sh: clang; libclang-rt-dev,
# only recommended by clang, holds libFuzzer and the sanitizer runtimes;
# libomp-dev for CMake's OpenMP check under clang; Ninja).
# protoc and grpc_python_plugin (protobuf-compiler-grpc) make the Python
# client's stubs; Debian's python3-grpc-tools is not wanted: its protoc 3.6
# cannot compile the API's proto3 `optional` fields.
TEST_PACKAGES=(
  prometheus python3-grpcio python3-protobuf curl openssl iproute2
  protobuf-compiler protobuf-compiler-grpc
  gnuplot-nox python3-numpy yamllint shellcheck
  clang libclang-rt-dev libomp-dev ninja-build
)

# Only in the container image: an init that forwards signals (tini), curl
# for the gRPC health check (deploy/docker/hydra-healthcheck.sh), and the
# ssh client and server Open MPI uses to start ranks on other pods.
IMAGE_PACKAGES=(
  tini curl openssh-client openssh-server
)

# Node.js and npm fetch the default model and run tests/deploy's schema
# checks; Debian's are taken only where no npm is installed.
NODE_PACKAGES=(nodejs npm)
