#!/usr/bin/env bash
# chat_template.reference_equality: renders tests/data/chat_templates with
# @huggingface/jinja (node, the packages of package-lock.json, installed by
# scripts/setup.sh), then compares hydra's renderer with it
# (reference_test.cc). With --ollama_templates, the same on the ~95 real
# templates @huggingface/ollama-utils ships instead. Exit code 77 =
# skipped: no node.
#
#   reference_test.sh TEST_BINARY DATA_DIR WORK_DIR [--ollama_templates]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
test_binary="$1" data_dir="$2" work_dir="$3" set_name="${4:-}"

if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: no node (scripts/setup.sh installs it)"
  exit 77
fi
if [ ! -f "$HERE/node_modules/.hydra-lock.sha256" ] ||
   [ "$(cat "$HERE/node_modules/.hydra-lock.sha256")" != "$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)" ]; then
  echo "tests/chat_templates/node_modules is missing or stale: run scripts/setup.sh (npm ci there)" >&2
  exit 1
fi
mkdir -p "$work_dir"
if [ "$set_name" = "--ollama_templates" ]; then
  node "$HERE/extract_ollama_templates.js" "$data_dir" "$work_dir/ollama_templates"
  data_dir="$work_dir/ollama_templates"
  expected="$work_dir/expected_ollama.json"
  export HYDRA_CHAT_TEMPLATE_DATA="$data_dir"
else
  expected="$work_dir/expected.json"
fi
node "$HERE/render_reference.js" "$data_dir" "$expected"
HYDRA_CHAT_TEMPLATE_EXPECTED="$expected" exec "$test_binary"
