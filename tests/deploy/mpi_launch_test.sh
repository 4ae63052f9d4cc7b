#!/usr/bin/env bash
# The multi-node launcher of the image (deploy/docker/hydra-mpi.sh) on one
# machine: the hostfiles it derives from a LeaderWorkerSet's environment
# and from the MPI Operator's hostfile, then `hydra-mpi launch` of two ranks
# from a localhost hostfile (mpirun, hydra-serve --tp=2), a completion
# through rank 0, and SIGTERM to the launcher while streams run: health
# turns NOT_SERVING, new calls get UNAVAILABLE, the streams finish, every
# rank and mpirun exit 0, the launcher exits 0.
# Usage: mpi_launch_test.sh [HYDRA_BINARY] [MODEL_DIR]
# Exit 77 = skipped (no model or no mpirun).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HYDRA="${1:-$ROOT/build/cli/hydra}"
MODEL="${2:-$ROOT/models/stories15M}"
MPI="$ROOT/deploy/docker/hydra-mpi.sh"
PYTHON=/usr/bin/python3
# shellcheck source=tests/deploy/wait_serving.sh
source "$ROOT/tests/deploy/wait_serving.sh"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/launch.log" ] && tail -n 30 "$WORK/launch.log" >&2; exit 1; }

WORK="$(mktemp -d)"
LAUNCH_PID=""
cleanup() {
  # The launcher leads its own process group (setsid): mpirun and the ranks too.
  if [ -n "$LAUNCH_PID" ]; then kill -KILL -- "-$LAUNCH_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Hostfiles: LWS (leader first, workers named after it), MPI Operator.
got="$(env -u OMPI_MCA_orte_default_hostfile LWS_LEADER_ADDRESS=hydra-tp-1.hydra-tp.prod \
  LWS_GROUP_SIZE=3 LWS_WORKER_INDEX=0 "$MPI" hostfile | tr '\n' ' ')"
want="hydra-tp-1.hydra-tp.prod slots=1 hydra-tp-1-1.hydra-tp.prod slots=1 hydra-tp-1-2.hydra-tp.prod slots=1 "
[ "$got" = "$want" ] || fail "LWS hostfile: got '$got', want '$want'"
printf '# by the operator\nhydra-tp-launcher.hydra-tp-worker.ns.svc slots=1\n\nhydra-tp-worker-0.hydra-tp-worker.ns.svc slots=1\n' \
  >"$WORK/operator-hostfile"
got="$(HYDRA_MPI_HOSTFILE="$WORK/operator-hostfile" "$MPI" hostfile | tr '\n' ' ')"
want="hydra-tp-launcher.hydra-tp-worker.ns.svc slots=1 hydra-tp-worker-0.hydra-tp-worker.ns.svc slots=1 "
[ "$got" = "$want" ] || fail "MPIJob hostfile: got '$got', want '$want'"
echo "ok: hostfiles from LWS_LEADER_ADDRESS/LWS_GROUP_SIZE and from the operator's hostfile"

[ -f "$MODEL/config.json" ] || skip "no model at $MODEL"
command -v mpirun >/dev/null || skip "no mpirun"
[ -x "$HYDRA" ] || fail "no hydra binary at $HYDRA"
read -r PORT < <("$PYTHON" "$ROOT/tests/free_ports.py" 1)

# Open MPI refuses root unless told; the image runs as a user.
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
echo "localhost slots=2" >"$WORK/hostfile"
HYDRA_RUN_DIR="$WORK/run" HYDRA_MPI_HOSTFILE="$WORK/hostfile" \
  HYDRA_SERVE="$ROOT/deploy/docker/hydra-serve.sh" HYDRA_BIN="$HYDRA" HYDRA_FLAGFILE=/nonexistent \
  OMP_NUM_THREADS=1 setsid "$MPI" launch --model="$MODEL" --host=127.0.0.1 --port="$PORT" --metrics_port=0 --http_port=0 \
  --kv_cache_bytes=67108864 >"$WORK/launch.log" 2>&1 &
LAUNCH_PID=$!

wait_serving "$PORT" "$LAUNCH_PID" || fail "rank 0 never SERVING (or hydra-mpi launch exited)"
grep -q "rank 1 of 2: worker ready" "$WORK/launch.log" || fail "no second rank"

expected="$("$HYDRA" generate --model="$MODEL" --prompt="Once upon a time" --temperature=0 \
  --max_tokens=16 2>/dev/null)"
got="$("$HYDRA" client --target="127.0.0.1:$PORT" --prompt="Once upon a time" --temperature=0 \
  --max_tokens=16 2>/dev/null)" || fail "hydra client"
[ "$got" = "$expected" ] || fail "tp=2 output differs: '$got' vs '$expected'"
echo "ok: two ranks through hydra-mpi launch, same tokens as a world of one"

# Streams running when the launcher gets SIGTERM (issue 15 item 4): health
# turns NOT_SERVING and a new call is refused at once, the streams finish
# uncut, every rank exits 0.
stream_pids=()
for i in $(seq 1 12); do
  "$HYDRA" client --target="127.0.0.1:$PORT" --prompt="Once upon a time, story $i" \
    --temperature=0 --max_tokens=240 >"$WORK/stream$i.out" 2>&1 &
  stream_pids+=("$!")
done
# Each stream's first tokens are out (its output file is written from the
# first message on), so every call is in the engine when SIGTERM comes.
for i in $(seq 1 12); do
  for _ in $(seq 1 300); do
    [ -s "$WORK/stream$i.out" ] && break
    sleep 0.1
  done
done
running=0
for pid in "${stream_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
kill -TERM "$LAUNCH_PID"
sleep 0.3
if "$ROOT/deploy/docker/hydra-healthcheck.sh" "127.0.0.1:$PORT" hydra.v1.Inference 2>/dev/null; then
  fail "health still SERVING 0.3 s after SIGTERM"
fi
if late="$("$HYDRA" client --target="127.0.0.1:$PORT" --prompt="late" --max_tokens=4 2>&1)"; then
  fail "a call 0.3 s after SIGTERM was served: $late"
fi
grep -q UNAVAILABLE <<<"$late" || fail "a call after SIGTERM was not refused with UNAVAILABLE: $late"
for i in "${!stream_pids[@]}"; do
  wait "${stream_pids[$i]}" || fail "stream $((i + 1)) was cut by the drain: $(cat "$WORK/stream$((i + 1)).out")"
done
echo "ok: SIGTERM with $running of 12 streams running: health NOT_SERVING, new call UNAVAILABLE, every stream finished"

status=0
for _ in $(seq 1 120); do
  kill -0 "$LAUNCH_PID" 2>/dev/null || break
  sleep 0.5
done
wait "$LAUNCH_PID" || status=$?
LAUNCH_PID=""
cat "$WORK/launch.log"
[ "$status" -eq 0 ] || fail "hydra-mpi launch exited $status after SIGTERM"
grep -q "SIGTERM to rank 0" "$WORK/launch.log" || fail "the launcher did not pass SIGTERM to rank 0"
grep -q "rank 1: stopped" "$WORK/launch.log" || fail "rank 1 did not stop cleanly"
echo PASS
