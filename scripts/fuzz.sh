#!/usr/bin/env bash
# Fuzz targets and sanitizer runs (docs/reliability.md), in build-fuzz/:
# clang with ASan + UBSan everywhere (-DHYDRA_FUZZ=ON), building only what
# they need (the hydra_reliability target, or the targets named).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]  run each fuzz target (default:
#                      all of tests/fuzz) for SECONDS (default 60) over its
#                      seed corpus (tests/fuzz/corpus/TARGET), one per core
#                      at a time (HYDRA_FUZZ_JOBS); fails on a
#                      crash, a leak, a property check or a timeout, and
#                      leaves the input in build-fuzz/findings/TARGET/
#   scripts/fuzz.sh --build                build the fuzz targets and the
#                      sanitized unit tests
#   scripts/fuzz.sh --tests [TEST...]      run the sanitized unit tests
#                      (default: all; tests/fuzz/CMakeLists.txt lists them)
#
# Reproduce a finding: build-fuzz/tests/fuzz/TARGET FILE. Exit code 77 =
# skipped: no clang++ that links -fsanitize=fuzzer (scripts/setup.sh
# installs Debian's). HYDRA_FUZZ_BUILD_DIR overrides the folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HYDRA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CORPUS_DIR="$ROOT/tests/fuzz/corpus"

log() { printf '[fuzz] %s\n' "$*" >&2; }

check_clang() {
  local probe
  probe="$(mktemp -d)"
  echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' \
    >"$probe/probe.cc"
  if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cc" -o "$probe/probe" \
    >/dev/null 2>&1; then
    rm -rf "$probe"
    echo "SKIPPED: no clang++ that links -fsanitize=fuzzer (apt-get install clang)"
    exit 77
  fi
  rm -rf "$probe"
}

# build TARGET...: configures build-fuzz once, then builds the targets. One
# build at a time: scripts/test.sh starts one in the background, and the
# ctest entries wait for it here.
build() {
  check_clang
  mkdir -p "$BUILD_DIR"
  local lock
  exec {lock}>"$BUILD_DIR/.build.lock"
  flock "$lock"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    local launcher=()
    if command -v ccache >/dev/null 2>&1; then
      launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    log "configuring $BUILD_DIR (clang, ASan + UBSan, libFuzzer)"
    CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DHYDRA_FUZZ=ON "${launcher[@]}" >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target "$@"
}

# fuzz SECONDS TARGET: new inputs go to a scratch corpus, the seeds stay
# as they are; libFuzzer's last status line gives the executions.
fuzz() {
  local seconds="$1" target="$2" work findings status=0
  work="$(mktemp -d)"
  findings="$BUILD_DIR/findings/$target"
  mkdir -p "$findings"
  local args=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -error_exitcode=1
    -print_final_stats=1 -artifact_prefix="$findings/")
  if [ -f "$ROOT/tests/fuzz/$target.dict" ]; then
    args+=(-dict="$ROOT/tests/fuzz/$target.dict")
  fi
  log "$target: ${seconds}s"
  "$BUILD_DIR/tests/fuzz/$target" "${args[@]}" "$work" "$CORPUS_DIR/$target" \
    >"$work.log" 2>&1 || status=$?
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work.log" >&2
    rm -f "$work.log"
    log "$target: FAILED (exit $status); the input is in $findings/"
    return 1
  fi
  local execs
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")"
  rm -f "$work.log"
  echo "$target: ${execs:-?} executions in ${seconds}s, no finding"
}

case "${1:-}" in
  --build)
    build hydra_reliability hydra_sentencepiece
    ;;
  --tests)
    shift
    build hydra_reliability
    if [ $# -eq 0 ]; then
      ctest --test-dir "$BUILD_DIR" -L sanitize --output-on-failure
    else
      for test in "$@"; do
        ctest --test-dir "$BUILD_DIR" -L sanitize -R "^sanitize\.$test\$" \
          --output-on-failure --no-tests=error
      done
    fi
    ;;
  *)
    seconds=60
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
      seconds="$1"
      shift
    fi
    targets=("$@")
    if [ ${#targets[@]} -eq 0 ]; then
      for source in "$ROOT"/tests/fuzz/*_fuzzer.cc; do
        targets+=("$(basename "$source" .cc)")
      done
    fi
    # The SentencePiece plugin is loaded, not linked: build it too.
    build "${targets[@]}" hydra_sentencepiece
    # One target per core at a time (HYDRA_FUZZ_JOBS): each is one process.
    jobs_max="${HYDRA_FUZZ_JOBS:-$(nproc)}"
    failed=0
    running=0
    for target in "${targets[@]}"; do
      if [ "$running" -ge "$jobs_max" ]; then
        wait -n || failed=1
        running=$((running - 1))
      fi
      fuzz "$seconds" "$target" &
      running=$((running + 1))
    done
    while [ "$running" -gt 0 ]; do
      wait -n || failed=1
      running=$((running - 1))
    done
    exit "$failed"
    ;;
esac
