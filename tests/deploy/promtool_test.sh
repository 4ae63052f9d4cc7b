#!/usr/bin/env bash
# The alert rules load (promtool check rules), the example prometheus.yml
# with them (promtool check config), and the rules' unit tests pass on
# synthetic series (promtool test rules). Exit 77 = skipped (no promtool:
# Debian's prometheus, installed by scripts/setup.sh).
set -euo pipefail
MONITORING="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/monitoring" && pwd)"

command -v promtool >/dev/null || { echo "SKIPPED: no promtool (apt-get install prometheus)"; exit 77; }
cd "$MONITORING"
promtool check rules hydra.rules.yml
promtool check config prometheus.yml
promtool test rules hydra.rules.test.yml
echo PASS
