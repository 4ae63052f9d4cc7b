#!/usr/bin/env bash
# Runs one of tests/http's Node tests: exit code 77 (skipped) without node.
set -euo pipefail
command -v node >/dev/null 2>&1 || { echo "SKIP: no node"; exit 77; }
exec node "$@"
