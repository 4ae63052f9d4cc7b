#!/usr/bin/env bash
# chat_template.reference_equality: renders tests/data/chat_templates with
# @huggingface/jinja (node, the packages of package-lock.json, installed by
# scripts/setup.sh), then compares hydra's renderer with it
# (reference_test.cc). Exit code 77 = skipped: no node.
#
#   reference_test.sh TEST_BINARY DATA_DIR WORK_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
test_binary="$1" data_dir="$2" work_dir="$3"

if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: no node (scripts/setup.sh installs it)"
  exit 77
fi
if [ ! -d "$HERE/node_modules/@huggingface/jinja" ]; then
  echo "tests/chat_templates/node_modules is missing: run scripts/setup.sh (npm ci there)" >&2
  exit 1
fi
mkdir -p "$work_dir"
node "$HERE/render_reference.js" "$data_dir" "$work_dir/expected.json"
HYDRA_CHAT_TEMPLATE_EXPECTED="$work_dir/expected.json" exec "$test_binary"
