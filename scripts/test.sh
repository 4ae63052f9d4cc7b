#!/usr/bin/env bash
# Sets everything up, then runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "${HYDRA_BUILD_DIR:-$ROOT/build}"
# The whole suite ends with the sanitizer build (a second compile, with
# clang). Started now at the lowest priority, it uses the cores the tests
# leave idle (servers starting, clients waiting) and sanitize.build, which
# waits for it, finds it done; a failure there is reported by that test.
prebuild=""
if [ $# -eq 0 ]; then
  nice -n 19 "$ROOT/scripts/fuzz.sh" --build >sanitize-prebuild.log 2>&1 &
  prebuild=$!
fi
status=0
ctest --output-on-failure --timeout 600 "$@" || status=$?
if [ -n "$prebuild" ]; then wait "$prebuild" || true; fi
exit "$status"
