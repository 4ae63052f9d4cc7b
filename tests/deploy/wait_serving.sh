# shellcheck shell=bash
# Sourced by the deploy tests that start a server through the image's
# scripts. wait_serving PORT PID: polls the image's gRPC health check
# (hydra-healthcheck) for hydra.v1.Inference on 127.0.0.1:PORT every 0.5 s
# for up to 60 s; returns 0 once it says SERVING, 1 when PID (the process
# that serves) exits first or time runs out.
wait_serving() {
  local health
  health="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/docker/hydra-healthcheck.sh"
  for _ in $(seq 1 120); do
    if "$health" "127.0.0.1:$1" hydra.v1.Inference 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.5
  done
  "$health" "127.0.0.1:$1" hydra.v1.Inference
}
