#!/usr/bin/env bash
# The GPU check, in one call on a machine with one NVIDIA GPU: runs the GPU
# tests, `hydra serve --device=cuda` with a client, and the GPU benchmark,
# and prints a short table last. Built to finish in under 8 minutes. Needs
# models/stories15M for the model-backed tests (they skip without it).
#
# Usage: tests/gpu/run.sh [BUILD_DIR]         builds with -DHYDRA_CUDA=ON for
#                                             this GPU (default: build-gpu)
#        tests/gpu/run.sh --prebuilt[=DIR]    runs a bundle made elsewhere by
#                                             scripts/gpu_bundle.sh (default
#                                             DIR: .gpu-bundle), for a machine
#                                             without hydra's build packages;
#                                             the tarballs of --pack are
#                                             unpacked first
#        tests/gpu/run.sh --unpack-only      only that
# With no argument, a bundle in the checkout is used when there is one.
# Where $OUT is set (the device tool's output folder), the logs go there too.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle=""
build="${root}/build-gpu"
# What scripts/gpu_bundle.sh --pack makes for the device tool's carry.
carried=("${root}/.gpu-carry/gpu-bundle.tar.xz"
  "${root}/.gpu-carry-model/stories15M.tar.xz")
unpack() {
  local tarball
  for tarball in "${carried[@]}"; do
    [[ -f ${tarball} ]] || continue
    echo "unpacking ${tarball}"
    tar -C "${root}" -xJf "${tarball}" || exit 1
  done
}
case "${1:-}" in
  --unpack-only)
    unpack
    exit 0
    ;;
  --prebuilt) bundle="${root}/.gpu-bundle" ;;
  --prebuilt=*) bundle="$(realpath -m "${1#--prebuilt=}")" ;;
  "") [[ -x "${root}/.gpu-bundle/run" || -f ${carried[0]} ]] &&
    bundle="${root}/.gpu-bundle" ;;
  *) build="$(realpath -m "$1")" ;;
esac
[[ -n ${bundle} ]] && unpack
logs="${bundle:-${build}}/gpu-check"
mkdir -p "${logs}"
start=$(date +%s)
# Prebuilt test binaries carry the bundling machine's paths; these win.
export HYDRA_TEST_MODEL_DIR="${root}/models/stories15M"
export HYDRA_TEST_DATA_DIR="${root}/tests/data"

say() { printf '\n== %s (t=%ds)\n' "$1" "$(($(date +%s) - start))"; }
# Every stage's timeout is cut to what is left of a 7.5-minute budget (less
# 15 s for the summary), so a hang anywhere still ends the check inside 8
# minutes with the table printed. cap N: min(N, seconds left), at least 1.
budget=450
cap() {
  local left=$((budget - 15 - ($(date +%s) - start)))
  if ((left < $1)); then echo $((left > 1 ? left : 1)); else echo "$1"; fi
}

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "tests/gpu/run.sh: no NVIDIA GPU visible; nothing to check" >&2
  exit 77
fi
if [[ ! -f "${root}/models/stories15M/model.safetensors" ]]; then
  echo "warning: no models/stories15M: model-backed GPU tests will skip" >&2
fi

tests=(kernels_gpu_test forward_gpu_test nccl_gpu_test engine_gpu_test)
if [[ -n ${bundle} ]]; then
  say "prebuilt bundle ${bundle}"
  [[ -x ${bundle}/run ]] || {
    echo "no bundle at ${bundle} (make one with scripts/gpu_bundle.sh)" >&2
    exit 1
  }
  built="$(cat "${bundle}/COMMIT" 2>/dev/null)"
  here="$(git -C "${root}" rev-parse HEAD 2>/dev/null)"
  echo "bundle built from ${built:-?}; this checkout is ${here:-?}"
  [[ ${built} == "${here}" ]] || echo "warning: the bundle is not this checkout's commit" >&2
else
  say "configure"
  if ! cmake -S "${root}" -B "${build}" -DCMAKE_BUILD_TYPE=Release \
    -DHYDRA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native \
    >"${logs}/configure.log" 2>&1; then
    tail -n 40 "${logs}/configure.log"
    echo "configure failed: on a machine without hydra's build packages," \
      "make a bundle elsewhere (scripts/gpu_bundle.sh) and use --prebuilt" >&2
    exit 1
  fi

  say "build"
  if ! timeout "$(cap 330)" cmake --build "${build}" -j"$(nproc)" \
    --target "${tests[@]}" cuda_plan_test hydra_gpu_bench hydra hydra_cuda \
    >"${logs}/build.log" 2>&1; then
    grep -E "error|Error" "${logs}/build.log" | head -n 40
    echo "build failed or ran out of time (t=$(($(date +%s) - start))s)" >&2
    exit 1
  fi
fi

# command_for NAME: sets cmd to the command line that runs program NAME, from
# the bundle or the build (cmd=(false) and a message when there is none).
command_for() {
  if [[ -n ${bundle} ]]; then
    cmd=("${bundle}/run" "$1")
    return
  fi
  local bin
  bin="$(find "${build}" -path "${build}/CMakeFiles" -prune -o -type f \
    -name "$1" -perm -u+x -print | head -n 1)"
  if [[ -n ${bin} ]]; then
    cmd=("${bin}")
  else
    echo "no program $1 under ${build}" >&2
    cmd=(false)
  fi
}

say "tests"
summary=()
failed=0
for t in cuda_plan_test "${tests[@]}"; do
  t0=$(date +%s)
  command_for "${t}" 2>"${logs}/${t}.log"
  timeout "$(cap 150)" "${cmd[@]}" --gtest_color=no >>"${logs}/${t}.log" 2>&1
  rc=$?
  passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "${logs}/${t}.log")
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "${logs}/${t}.log")
  failures=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "${logs}/${t}.log")
  if ((rc != 0)); then
    failed=1
    grep -E "^\[  FAILED  \]|Failure|error" "${logs}/${t}.log" | head -n 20
  fi
  summary+=("$(printf '| %-18s | %6s | %7s | %6s | %4s | %5ss |' "${t}" \
    "${passed:-0}" "${skipped:-0}" "${failures:-0}" "${rc}" \
    "$(($(date +%s) - t0))")")
done

say "hydra serve --device=cuda (the plugin path)"
model="${root}/models/stories15M"
serve_result=skipped
if [[ -f "${model}/model.safetensors" ]]; then
  port=$((20000 + RANDOM % 20000))
  command_for hydra
  hydra=("${cmd[@]}")
  "${hydra[@]}" serve --model="${model}" --device=cuda \
    --port="${port}" --metrics_port=0 >"${logs}/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 "$(cap 60)"); do
    grep -q "serving" "${logs}/serve.log" && break
    kill -0 "${serve_pid}" 2>/dev/null || break # died: no point waiting
    sleep 1
  done
  if timeout "$(cap 60)" "${hydra[@]}" client \
    --target="localhost:${port}" \
    --prompt="Once upon a time" --max_tokens=32 --temperature=0 \
    >"${logs}/client.log" 2>&1; then
    serve_result=passed
  else
    serve_result=failed
    failed=1
    tail -n 5 "${logs}/serve.log" "${logs}/client.log"
  fi
  kill "${serve_pid}" 2>/dev/null
  wait "${serve_pid}" 2>/dev/null
fi

say "benchmark"
bench_rc=0
command_for hydra_gpu_bench
timeout "$(cap 150)" "${cmd[@]}" | tee "${logs}/bench.log"
bench_rc=${PIPESTATUS[0]}

say "summary (logs in ${logs})"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
printf '| %-18s | %6s | %7s | %6s | %4s | %6s |\n' test passed skipped failed rc time
printf '|%s|\n' "--------------------|--------|---------|--------|------|--------"
printf '%s\n' "${summary[@]}"
echo "hydra serve --device=cuda + client: ${serve_result}"
echo
grep -E '^(device:|\|)' "${logs}/bench.log" || echo "benchmark: no output (rc ${bench_rc})"
echo "total: $(($(date +%s) - start)) s; benchmark rc ${bench_rc}"
[[ -n ${OUT:-} && -d ${OUT:-} ]] && cp -r "${logs}" "${OUT}/"
if ((failed != 0 || bench_rc != 0)); then exit 1; fi
