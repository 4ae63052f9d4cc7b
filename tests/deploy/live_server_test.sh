#!/usr/bin/env bash
# Starts a real `hydra serve` the way the image does (deploy/docker/
# hydra-serve.sh with the Kubernetes ConfigMap's flagfile, a FLAGS_
# environment variable and arguments), waits for the image's gRPC health
# check (hydra-healthcheck) to say SERVING, scrapes /metrics, and checks
# that every metric the alert rules, the Grafana dashboard, the HPA and the
# prometheus-adapter values name is a series this server exports (and that
# the dashboard has the panels docs/deployment.md promises). Then SIGTERM:
# health turns NOT_SERVING and the server exits 0.
# Usage: live_server_test.sh [HYDRA_BINARY] [MODEL_DIR]
# Exit 77 = skipped (no model, node or the npm packages of tests/deploy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HYDRA="${1:-$ROOT/build/cli/hydra}"
MODEL="${2:-$ROOT/models/stories15M}"
PYTHON=/usr/bin/python3
# shellcheck source=tests/deploy/wait_serving.sh
source "$ROOT/tests/deploy/wait_serving.sh"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/server.log" ] && tail -n 20 "$WORK/server.log" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || skip "no model at $MODEL"
command -v node >/dev/null || skip "no node"
[ -d "$ROOT/tests/deploy/node_modules/js-yaml" ] || skip "no npm packages in tests/deploy (scripts/setup.sh)"
command -v curl >/dev/null || skip "no curl"
KUBECTL="${KUBECTL:-$(command -v kubectl || true)}"
[ -n "$KUBECTL" ] || skip "no kubectl"
export KUBECTL
[ -x "$HYDRA" ] || fail "no hydra binary at $HYDRA"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

read -r PORT METRICS_PORT HTTP_PORT < <("$PYTHON" "$ROOT/tests/free_ports.py" 3)

# The ConfigMap's flagfile names --http_port (the OpenAI-compatible API).
# A hydra built before that flag existed gets the flagfile without it.
FLAGFILE="$ROOT/deploy/k8s/base/serve.flags"
http_args=()
helpfull="$("$HYDRA" --helpfull 2>&1 || true)"  # exits non-zero after printing
if grep -q -- "--http_port" <<<"$helpfull"; then
  http_args=(--http_port="$HTTP_PORT")
else
  echo "note: $HYDRA has no --http_port; serving without the HTTP API"
  grep -v -- "^--http_port=" "$FLAGFILE" >"$WORK/serve.flags"
  FLAGFILE="$WORK/serve.flags"
fi

# Precedence: the flagfile says 512 MiB of KV cache, FLAGS_kv_cache_bytes
# 64 MiB (wins: stories15M then holds 4848 tokens, not 38832), the arguments the
# model, address and ports (win over the flagfile's).
HYDRA_BIN="$HYDRA" HYDRA_FLAGFILE="$FLAGFILE" FLAGS_kv_cache_bytes=67108864 \
  "$ROOT/deploy/docker/hydra-serve.sh" --model="$MODEL" --host=127.0.0.1 --port="$PORT" \
  --metrics_port="$METRICS_PORT" "${http_args[@]}" 2>"$WORK/server.log" &
SERVER_PID=$!

health="$ROOT/deploy/docker/hydra-healthcheck.sh"
wait_serving "$PORT" "$SERVER_PID" || fail "hydra-healthcheck never saw SERVING"
"$health" "127.0.0.1:$PORT" || fail "hydra-healthcheck: the server (\"\") is not SERVING"
grep -q "KV capacity 4848 tokens" "$WORK/server.log" ||
  fail "FLAGS_kv_cache_bytes did not override the flagfile: $(grep serving "$WORK/server.log")"
echo "ok: served through hydra-serve with the ConfigMap's flags; hydra-healthcheck says SERVING"
if [ "${#http_args[@]}" -gt 0 ]; then
  # What the inference gateway's pods answer on: GET /health is 200 while serving.
  curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/health" || fail "GET /health on --http_port is not 200"
  echo "ok: GET /health on the HTTP port says 200"
fi

"$HYDRA" client --target="127.0.0.1:$PORT" --prompt="Once upon a time" --max_tokens=4 \
  --temperature=0 >/dev/null 2>"$WORK/client.log" || { cat "$WORK/client.log" >&2; fail "hydra client"; }
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt"
node "$ROOT/tests/deploy/validate.js" --check-metrics="$WORK/metrics.txt"

# Draining: health turns NOT_SERVING, then the process exits 0.
kill -TERM "$SERVER_PID"
if "$health" "127.0.0.1:$PORT" 2>/dev/null; then
  # The answer may have raced the signal; ask again.
  sleep 0.2
  if "$health" "127.0.0.1:$PORT" 2>/dev/null; then fail "still SERVING after SIGTERM"; fi
fi
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" -eq 0 ] || fail "hydra serve exited $status after SIGTERM"
echo "ok: SIGTERM drained; hydra-healthcheck stopped passing; exit 0"
echo PASS
