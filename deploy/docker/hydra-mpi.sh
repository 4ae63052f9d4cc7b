#!/usr/bin/env bash
# Tensor parallelism across pods: Open MPI starts one hydra rank per pod.
#
#   hydra-mpi worker          every pod but rank 0's: an ssh server on
#                             $HYDRA_SSH_PORT (2222), as the image's non-root
#                             user, through which mpirun starts the rank here
#   hydra-mpi launch [FLAG]... rank 0's pod: writes the hostfile, waits for
#                             the workers' ssh servers, then runs
#                             `mpirun -np N hydra-serve --tp=N FLAG...`
#   hydra-mpi hostfile        prints the hostfile launch would use
#
# Hosts: with a LeaderWorkerSet, from LWS_LEADER_ADDRESS (this pod, rank 0)
# and LWS_GROUP_SIZE (worker i is the leader's DNS name with "-i" after its
# first label); otherwise from the hostfile in $HYDRA_MPI_HOSTFILE or
# $OMPI_MCA_orte_default_hostfile (the MPI Operator's /etc/mpi/hostfile,
# launcher first when runLauncherAsWorker is set). N is the hostfile's slots.
#
# ssh keys: $HYDRA_SSH_DIR holds a private key (id_ed25519, id_ecdsa or
# id_rsa) and authorized_keys, from a Secret. They are copied to
# $HYDRA_RUN_DIR (a writable emptyDir) with the modes ssh insists on.
#
# Stopping: SIGTERM to this script (the pod's termination) is passed to rank
# 0 alone, which drains its requests and tells the other ranks to leave, so
# mpirun and the script exit 0. mpirun itself treats a signal as an abort.
# If any rank fails, rank 0 or mpirun exits non-zero, this script exits with
# that status, and the orchestrator restarts the whole group.
set -euo pipefail

RUN_DIR="${HYDRA_RUN_DIR:-/run/hydra-mpi}"
SSH_DIR="${HYDRA_SSH_DIR:-/etc/hydra-ssh}"
SSH_PORT="${HYDRA_SSH_PORT:-2222}"
SERVE="${HYDRA_SERVE:-/usr/local/bin/hydra-serve}"
WAIT_SECONDS="${HYDRA_MPI_WAIT_SECONDS:-300}"

log() { printf '[hydra-mpi] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

private_key() {
  local name
  for name in id_ed25519 id_ecdsa id_rsa; do
    if [ -f "$SSH_DIR/$name" ]; then echo "$SSH_DIR/$name"; return; fi
  done
  die "no private key (id_ed25519, id_ecdsa or id_rsa) in $SSH_DIR"
}

run_worker() {
  [ -f "$SSH_DIR/authorized_keys" ] || die "no $SSH_DIR/authorized_keys"
  mkdir -p "$RUN_DIR"
  chmod 700 "$RUN_DIR"
  install -m 600 "$SSH_DIR/authorized_keys" "$RUN_DIR/authorized_keys"
  if [ ! -f "$RUN_DIR/ssh_host_ed25519_key" ]; then
    ssh-keygen -q -t ed25519 -N '' -f "$RUN_DIR/ssh_host_ed25519_key"
  fi
  cat >"$RUN_DIR/sshd_config" <<CONFIG
Port $SSH_PORT
HostKey $RUN_DIR/ssh_host_ed25519_key
PidFile $RUN_DIR/sshd.pid
AuthorizedKeysFile $RUN_DIR/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
CONFIG
  log "ssh server for Open MPI on port $SSH_PORT"
  exec /usr/sbin/sshd -D -e -f "$RUN_DIR/sshd_config"
}

# write_hostfile FILE: one "host slots=K" line per pod, rank 0's pod first.
write_hostfile() {
  local file=$1 source="${HYDRA_MPI_HOSTFILE:-${OMPI_MCA_orte_default_hostfile:-}}"
  if [ -n "${LWS_LEADER_ADDRESS:-}" ]; then
    local size="${LWS_GROUP_SIZE:?LWS_GROUP_SIZE is not set}" i
    [ "${LWS_WORKER_INDEX:-0}" = 0 ] || die "launch runs on the leader (LWS_WORKER_INDEX=0), not worker ${LWS_WORKER_INDEX}"
    echo "$LWS_LEADER_ADDRESS slots=1" >"$file"
    for ((i = 1; i < size; i++)); do
      echo "${LWS_LEADER_ADDRESS%%.*}-$i.${LWS_LEADER_ADDRESS#*.} slots=1" >>"$file"
    done
  elif [ -n "$source" ]; then
    grep -v '^[[:space:]]*\(#\|$\)' "$source" >"$file" || die "no hosts in $source"
  else
    die "no hosts: set LWS_LEADER_ADDRESS and LWS_GROUP_SIZE, or HYDRA_MPI_HOSTFILE"
  fi
}

# A pod's DNS name starts with its host name (LWS: hydra-tp-0.hydra-tp.NS,
# MPI Operator: hydra-tp-launcher.hydra-tp-worker.NS.svc).
is_local() {
  case "$1" in
    localhost | 127.0.0.1 | "$(hostname)" | "$(hostname)".*) return 0 ;;
    *) return 1 ;;
  esac
}

wait_for_ssh() {  # host
  local deadline=$((SECONDS + WAIT_SECONDS))
  until (exec 3<>"/dev/tcp/$1/$SSH_PORT") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "no ssh server at $1:$SSH_PORT after ${WAIT_SECONDS}s"
    sleep 2
  done
}

# Sets RANK0_PID to this pod's rank 0 (a `hydra` process with
# OMPI_COMM_WORLD_RANK=0), or "". No command substitution: it runs in the
# SIGTERM trap, where a forked subshell would die of the same signal.
RANK0_PID=""
find_rank0() {
  local dir comm
  RANK0_PID=""
  for dir in /proc/[0-9]*; do
    read -r comm <"$dir/comm" 2>/dev/null || continue
    [ "$comm" = hydra ] || continue
    if grep -qzx 'OMPI_COMM_WORLD_RANK=0' "$dir/environ" 2>/dev/null; then
      RANK0_PID="${dir#/proc/}"
      break  # not `return`: bash 5.2 leaves the trap handler on it
    fi
  done
}

# On SIGTERM: rank 0 drains and ends the job; before it exists, stop mpirun.
MPIRUN_PID=""
drain() {
  find_rank0
  if [ -n "$RANK0_PID" ]; then
    log "SIGTERM to rank 0 (pid $RANK0_PID): draining"
    kill -TERM "$RANK0_PID" 2>/dev/null || true
  elif [ -n "$MPIRUN_PID" ]; then
    log "no rank 0 yet: stopping mpirun"
    kill -TERM "$MPIRUN_PID" 2>/dev/null || true
  fi
}

run_launch() {
  mkdir -p "$RUN_DIR"
  chmod 700 "$RUN_DIR"
  local hostfile="$RUN_DIR/hostfile" host ranks=0 slots
  write_hostfile "$hostfile"
  while read -r host slots; do
    slots="${slots#slots=}"
    ranks=$((ranks + ${slots:-1}))
    if ! is_local "$host"; then
      [ -f "$RUN_DIR/id" ] || install -m 600 "$(private_key)" "$RUN_DIR/id"
      log "waiting for $host:$SSH_PORT"
      wait_for_ssh "$host"
    fi
  done <"$hostfile"
  cat >"$RUN_DIR/ssh_config" <<CONFIG
Host *
  Port $SSH_PORT
  IdentityFile $RUN_DIR/id
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  ConnectionAttempts 10
  LogLevel ERROR
CONFIG
  log "starting $ranks ranks: $(tr '\n' ' ' <"$hostfile")"
  # One rank per pod; --bind-to none leaves each rank's OpenMP threads all of
  # its pod's cores (Open MPI binds to a single core by default).
  mpirun -np "$ranks" --hostfile "$hostfile" --bind-to none \
    --mca plm_rsh_agent ssh --mca plm_rsh_args "-F $RUN_DIR/ssh_config" \
    --mca orte_keep_fqdn_hostnames true \
    --mca pml ob1 --mca btl tcp,self --mca mpi_yield_when_idle 1 \
    -x "OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}" \
    "$SERVE" --tp="$ranks" "$@" &
  MPIRUN_PID=$!
  local status=0
  trap drain TERM INT
  # `wait` returns early when a trapped signal arrives; wait again for the end.
  while :; do
    wait "$MPIRUN_PID" && status=0 || status=$?
    kill -0 "$MPIRUN_PID" 2>/dev/null || break
  done
  if [ "$status" -gt 128 ]; then  # interrupted just as mpirun ended
    local last=0
    wait "$MPIRUN_PID" 2>/dev/null || last=$?
    [ "$last" -eq 127 ] || status=$last
  fi
  log "mpirun exited with status $status"
  exit "$status"
}

case "${1:-}" in
  worker) shift; run_worker "$@" ;;
  launch) shift; run_launch "$@" ;;
  hostfile)
    tmp="$(mktemp)"
    write_hostfile "$tmp"
    cat "$tmp"
    rm -f "$tmp"
    ;;
  *) die "usage: hydra-mpi worker | hydra-mpi launch [hydra serve flags] | hydra-mpi hostfile" ;;
esac
