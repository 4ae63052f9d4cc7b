#!/usr/bin/env bash
# The GPU check, in one call on a machine with one NVIDIA GPU: configures
# and builds hydra with -DHYDRA_CUDA=ON (for this GPU's architecture only),
# runs the GPU tests and the GPU benchmark, and prints a short table last.
# Built to finish in under 8 minutes. Needs models/stories15M for the
# model-backed tests (they skip without it).
#
# Usage: tests/gpu/run.sh [BUILD_DIR]    (default: build-gpu)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-${root}/build-gpu}"
logs="${build}/gpu-check"
mkdir -p "${logs}"
start=$(date +%s)

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

say "configure"
if ! cmake -S "${root}" -B "${build}" -DCMAKE_BUILD_TYPE=Release \
  -DHYDRA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native \
  >"${logs}/configure.log" 2>&1; then
  tail -n 40 "${logs}/configure.log"
  exit 1
fi

say "build"
tests=(kernels_gpu_test forward_gpu_test nccl_gpu_test engine_gpu_test)
if ! timeout "$(cap 330)" cmake --build "${build}" -j"$(nproc)" \
  --target "${tests[@]}" cuda_plan_test hydra_gpu_bench hydra hydra_cuda \
  >"${logs}/build.log" 2>&1; then
  grep -E "error|Error" "${logs}/build.log" | head -n 40
  echo "build failed or ran out of time (t=$(($(date +%s) - start))s)" >&2
  exit 1
fi

say "tests"
summary=()
failed=0
for t in cuda_plan_test "${tests[@]}"; do
  bin="$(find "${build}/tests" -maxdepth 2 -type f -name "${t}" | head -n 1)"
  t0=$(date +%s)
  if [[ -z "${bin}" ]]; then
    echo "${t}: no binary under ${build}/tests" >"${logs}/${t}.log"
    rc=127
  else
    timeout "$(cap 150)" "${bin}" --gtest_color=no >"${logs}/${t}.log" 2>&1
    rc=$?
  fi
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
  "${build}/server/hydra" serve --model="${model}" --device=cuda \
    --port="${port}" --metrics_port=0 >"${logs}/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 "$(cap 60)"); do
    grep -q "serving" "${logs}/serve.log" && break
    kill -0 "${serve_pid}" 2>/dev/null || break # died: no point waiting
    sleep 1
  done
  if timeout "$(cap 60)" "${build}/server/hydra" client \
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
timeout "$(cap 150)" "${build}/tests/gpu/hydra_gpu_bench" | tee "${logs}/bench.log"
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
if ((failed != 0 || bench_rc != 0)); then exit 1; fi
