#!/usr/bin/env bash
# Sets everything up, then runs hydra's main job on the default model.
# Extra arguments go to `hydra generate` (e.g. --prompt="A cat" --temperature=0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${HYDRA_BUILD_DIR:-$ROOT/build}/server/hydra" generate --model="$ROOT/models/stories15M" "$@"
