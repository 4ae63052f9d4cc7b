#!/usr/bin/env bash
# Sets everything up, then runs hydra's main job: `hydra serve` on the default
# model (gRPC on :50051, Prometheus metrics on :9400). Extra arguments go to
# `hydra serve` (e.g. --port=50052 --max_running=64).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${HYDRA_BUILD_DIR:-$ROOT/build}/cli/hydra" serve --model="$ROOT/models/stories15M" "$@"
