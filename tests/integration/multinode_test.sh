#!/usr/bin/env bash
# Tensor parallelism across two "hosts": two network namespaces joined by a
# veth pair, one MPI rank in each, Open MPI's TCP transport between them.
# Open MPI reaches the second host through its rsh launcher, whose agent is a
# small script running the command with `ip netns exec`. Exit 77 = skipped
# (no permission for namespaces here).
# Usage: multinode_test.sh [hydra binary] [model dir]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HYDRA="${1:-$ROOT/build/cli/hydra}"
MODEL="${2:-$ROOT/models/stories15M}"
NS0="hydra_h0_$$"
NS1="hydra_h1_$$"
WORK="$(mktemp -d)"
MPI_PID=""

skip() { echo "SKIPPED: $*"; exit 77; }
cleanup() {
  if [ -n "$MPI_PID" ]; then kill -KILL "$MPI_PID" 2>/dev/null || true; fi
  ip netns pids "$NS0" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns pids "$NS1" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns del "$NS0" 2>/dev/null || true
  ip netns del "$NS1" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -f "$MODEL/model.safetensors" ] || skip "no converted model at $MODEL"
command -v mpirun >/dev/null || skip "mpirun is not installed"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
ip netns add "$NS0" 2>/dev/null || skip "this machine does not permit network namespaces"
ip netns add "$NS1"
ip link add "v0_$$" type veth peer name "v1_$$"
ip link set "v0_$$" netns "$NS0"
ip link set "v1_$$" netns "$NS1"
ip -n "$NS0" addr add 10.77.0.1/24 dev "v0_$$"
ip -n "$NS1" addr add 10.77.0.2/24 dev "v1_$$"
for ns in "$NS0" "$NS1"; do
  ip -n "$ns" link set lo up
done
ip -n "$NS0" link set "v0_$$" up
ip -n "$NS1" link set "v1_$$" up

# Open MPI's "ssh": run the command on the second host's namespace.
cat > "$WORK/netns_agent.sh" <<AGENT
#!/bin/sh
shift  # the host name
exec ip netns exec $NS1 /bin/sh -c "\$*"
AGENT
chmod +x "$WORK/netns_agent.sh"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$WORK/hosts"

# Expected: the world-of-one greedy continuation.
expected="$("$HYDRA" generate --model="$MODEL" --prompt="Once upon a time" --temperature=0 \
  --max_tokens=40 2>/dev/null)"

PORT=50777
ip netns exec "$NS0" mpirun --allow-run-as-root --oversubscribe -np 2 --hostfile "$WORK/hosts" \
  --mca plm_rsh_agent "$WORK/netns_agent.sh" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  -x OMP_NUM_THREADS=1 \
  "$HYDRA" serve --tp=2 --model="$MODEL" --host=127.0.0.1 --port=$PORT --metrics_port=0 --http_port=0 \
  --kv_cache_bytes=67108864 > "$WORK/serve.log" 2>&1 &
MPI_PID=$!

for _ in $(seq 1 120); do
  if grep -q "serving" "$WORK/serve.log"; then break; fi
  if ! kill -0 "$MPI_PID" 2>/dev/null; then cat "$WORK/serve.log"; echo "FAIL: the job died"; exit 1; fi
  sleep 0.5
done
grep -q "serving" "$WORK/serve.log" || { cat "$WORK/serve.log"; echo "FAIL: not ready"; exit 1; }

# The two ranks really live in different namespaces.
rank_ns() {
  for pid in $(pgrep -f "hydra serve --tp=2 --model=$MODEL --host=127.0.0.1 --port=$PORT" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" | grep -q "^OMPI_COMM_WORLD_RANK=$1$"; then
      echo "$pid $(ip netns identify "$pid")"
    fi
  done
}
read -r RANK0 NS_OF_0 <<< "$(rank_ns 0)"
read -r _ NS_OF_1 <<< "$(rank_ns 1)"
if [ "$NS_OF_0" != "$NS0" ] || [ "$NS_OF_1" != "$NS1" ]; then
  echo "FAIL: ranks in namespaces '$NS_OF_0' and '$NS_OF_1'"
  exit 1
fi

got="$(ip netns exec "$NS0" "$HYDRA" client --target=127.0.0.1:$PORT --prompt="Once upon a time" \
  --temperature=0 --max_tokens=40 2>/dev/null)"
if [ "$got" != "$expected" ]; then
  echo "FAIL: two-host output differs"; echo "expected: $expected"; echo "got:      $got"; exit 1
fi

kill -TERM "$RANK0"
for _ in $(seq 1 60); do
  kill -0 "$MPI_PID" 2>/dev/null || break
  sleep 0.5
done
status=0
wait "$MPI_PID" || status=$?
MPI_PID=""
cat "$WORK/serve.log"
[ "$status" -eq 0 ] || { echo "FAIL: mpirun exited $status"; exit 1; }
echo "PASS: rank 0 in $NS_OF_0, rank 1 in $NS_OF_1, same tokens as a world of one"
