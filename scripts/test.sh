#!/usr/bin/env bash
# Sets everything up, then runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "${HYDRA_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure --timeout 600 "$@"
