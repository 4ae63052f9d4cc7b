#!/bin/bash
# Runs examples/python/client.py against a real `hydra serve`: a greedy
# generation, the health check and the reflection listing, then SIGTERM must
# end the server with status 0.
# Usage: python_client_test.sh [HYDRA_BINARY] [MODEL_DIR]
# Exit status 77 means skipped (no grpcio for /usr/bin/python3, no protoc, or
# no model).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hydra=${1:-$root/build/cli/hydra}
model=${2:-$root/models/stories15M}
python=/usr/bin/python3
client=$root/examples/python/client.py

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

"$python" -c 'import grpc, google.protobuf' 2>/dev/null ||
  skip "$python cannot import grpc (install python3-grpcio, python3-protobuf)"
# The client generates its stubs with protoc and its plugin or with grpcio-tools.
have_protoc=0
{ command -v protoc && command -v grpc_python_plugin; } >/dev/null && have_protoc=1
((have_protoc)) || "$python" -c 'import grpc_tools' 2>/dev/null ||
  skip "no protoc and grpc_python_plugin (Debian: protobuf-compiler-grpc)"
[[ -f $model/config.json ]] || skip "no model at $model"
[[ -x $hydra ]] || fail "no hydra binary at $hydra"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Debian's python3-grpc-tools 1.14 (protoc 3.6) cannot compile proto3
# `optional`: with protoc and its plugin present, the client must not depend
# on whatever grpc_tools is installed. A stand-in that fails as 1.14 does
# comes first on the module path (the client once used any grpc_tools it
# found, and failed).
if ((have_protoc)); then
  mkdir -p "$work/old_grpc_tools/grpc_tools"
  touch "$work/old_grpc_tools/grpc_tools/__init__.py"
  cat >"$work/old_grpc_tools/grpc_tools/protoc.py" <<'EOF_PY'
import sys
sys.exit("hydra/v1/inference.proto:21:3: Explicit 'optional' labels are "
         "disallowed in the Proto3 syntax. (a stand-in for grpc_tools 1.14)")
EOF_PY
  export PYTHONPATH=$work/old_grpc_tools${PYTHONPATH:+:$PYTHONPATH}
  "$python" -c 'import grpc_tools' || fail "the stand-in grpc_tools does not import"
fi

read -r port metrics_port < <("$python" "$root/tests/free_ports.py" 2)
target=127.0.0.1:$port

"$hydra" serve --model="$model" --host=127.0.0.1 --port="$port" \
  --metrics_port="$metrics_port" --http_port=0 2>"$work/server.log" &
server_pid=$!

# The stubs are generated once and reused by every call below.
run_client() { "$python" "$client" --stubs="$work/stubs" --target="$target" "$@"; }

# Ready once health says SERVING (the server listens before the model is loaded).
for ((i = 0; ; i++)); do
  if run_client health --timeout=2 >"$work/health.log" 2>&1; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "server exited"; }
  ((i < 120)) || {
    cat "$work/server.log" "$work/health.log" >&2
    fail "server not SERVING after 60 s (the client's last words above)"
  }
  sleep 0.5
done

text=$(run_client generate --prompt="Once upon a time" --max_tokens=20 --temperature=0)
echo "generated: $text"
expected=", there was a little girl named Lily"
[[ $text == "$expected"* ]] || fail "greedy text does not start with '$expected'"

health=$(run_client health)
echo "$health"
grep -qx '"" (server): SERVING' <<<"$health" || fail "server health is not SERVING"
grep -qx 'hydra.v1.Inference: SERVING' <<<"$health" || fail "hydra.v1.Inference is not SERVING"

services=$(run_client list)
echo "services: $(tr '\n' ' ' <<<"$services")"
for service in hydra.v1.Inference grpc.health.v1.Health; do
  grep -qx "$service" <<<"$services" || fail "reflection does not list $service"
done

# Without protoc on the PATH the client falls back to grpc_tools: here a
# stand-in for a recent grpcio-tools that hands over to this protoc.
if ((have_protoc)); then
  mkdir -p "$work/new_grpc_tools/grpc_tools"
  touch "$work/new_grpc_tools/grpc_tools/__init__.py"
  cat >"$work/new_grpc_tools/grpc_tools/protoc.py" <<EOF_PY
import os, sys
os.execv("$(command -v protoc)", ["protoc",
         "--plugin=protoc-gen-grpc_python=$(command -v grpc_python_plugin)"]
         + sys.argv[1:])
EOF_PY
  fallback=$(PATH=/nonexistent PYTHONPATH=$work/new_grpc_tools "$python" "$client" \
    --stubs="$work/fallback_stubs" --target="$target" health) ||
    fail "the client without protoc did not fall back to grpc_tools: $fallback"
  grep -qx 'hydra.v1.Inference: SERVING' <<<"$fallback" || fail "fallback health: $fallback"
  echo "without protoc: grpc_tools generated the stubs"
fi

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
((status == 0)) || { cat "$work/server.log" >&2; fail "server exited with $status after SIGTERM"; }
echo PASS
