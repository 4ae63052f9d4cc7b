#!/bin/bash
# Scrapes a real `hydra serve` with a real Prometheus: after some streaming
# generations, PromQL over hydra's metrics must give sensible values, and
# promtool must accept the /metrics exposition.
# Usage: prometheus_test.sh [HYDRA_BINARY] [MODEL_DIR]
# Exit status 77 means skipped (no prometheus/promtool, or no model).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hydra=${1:-$root/build/cli/hydra}
model=${2:-$root/models/stories15M}
python=/usr/bin/python3
requests=10

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null || skip "no $tool (Debian: apt-get install prometheus curl)"
done
[[ -f $model/config.json ]] || skip "no model at $model"
[[ -x $hydra ]] || fail "no hydra binary at $hydra"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r port metrics_port prom_port < <("$python" "$root/tests/free_ports.py" 3)
prom=http://127.0.0.1:$prom_port

"$hydra" serve --model="$model" --host=127.0.0.1 --port="$port" \
  --metrics_port="$metrics_port" --http_port=0 2>"$work/server.log" &
pids+=($!)

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hydra
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" 2>"$work/prometheus.log" &
pids+=($!)

# Polls `command...` every 0.5 s for up to $1 seconds; on timeout shows the logs.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  tail -n 20 "$work/server.log" "$work/prometheus.log" >&2
  "$@" >&2 || true  # once more, to show why
  fail "timed out waiting for $what"
}

# Runs an instant PromQL query and checks its values (`v`, a list of floats,
# one per series) with a Python condition; prints the values.
check_query() {
  curl -fsS --get --data-urlencode "query=$1" "$prom/api/v1/query" |
    "$python" -c '
import json, math, sys
reply = json.load(sys.stdin)
v = [float(series["value"][1]) for series in reply["data"]["result"]]
if not eval(sys.argv[1]):
    sys.exit("%s = %s, want %s" % (sys.argv[2], v, sys.argv[1]))
print("ok: %s = %s" % (sys.argv[2], v))
' "$2" "$1"
}

wait_for 60 "the server to serve" grep -q '^\[hydra\] serving' "$work/server.log"
wait_for 30 "Prometheus to be ready" curl -fsS "$prom/-/ready"
# The first scrape must come before the requests, or rate() sees no increase.
wait_for 30 "the first scrape" check_query 'up{job="hydra"}' 'v == [1]'

for ((i = 0; i < requests; i++)); do
  "$hydra" client --target="127.0.0.1:$port" --prompt="Once upon a time" \
    --max_tokens=16 --temperature=0 >/dev/null 2>>"$work/client.log" ||
    { cat "$work/client.log" >&2; fail "hydra client failed"; }
done

queries=(
  'histogram_quantile(0.95, sum by (le) (rate(hydra_e2e_request_latency_seconds_bucket[1m])))'
  'len(v) == 1 and math.isfinite(v[0]) and v[0] > 0'
  'hydra_kv_cache_usage_ratio'
  'len(v) == 1 and 0 <= v[0] <= 1'
  'sum(hydra_requests_total)'
  "len(v) == 1 and v[0] >= $requests"
)
all_pass() {
  for ((q = 0; q < ${#queries[@]}; q += 2)); do
    check_query "${queries[q]}" "${queries[q + 1]}" || return 1
  done
}
# The scrapes after the requests take a few seconds to show.
wait_for 40 "the metrics in Prometheus" all_pass
all_pass

curl -fsS "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics (exit $?)"
echo PASS
