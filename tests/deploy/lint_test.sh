#!/usr/bin/env bash
# Lints what deploy/ ships: `lint_test.sh yamllint` (every YAML file, with
# the repository's .yamllint), `lint_test.sh shellcheck` (every shell script
# of deploy/, scripts/ and tests/), `lint_test.sh dockerfile`
# (tests/deploy/dockerfile_lint.py). Exit 77 = skipped (tool missing:
# scripts/setup.sh installs yamllint and shellcheck).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

skip() { echo "SKIPPED: $*"; exit 77; }
case "${1:-}" in
  yamllint)
    command -v yamllint >/dev/null || skip "no yamllint (apt-get install yamllint)"
    mapfile -t files < <(find deploy tests/deploy .yamllint -path '*/node_modules' -prune -o \
      \( -name '*.yaml' -o -name '*.yml' -o -name .yamllint \) -type f -print | sort)
    echo "yamllint: ${#files[@]} files"
    yamllint --strict -c .yamllint "${files[@]}"
    ;;
  shellcheck)
    command -v shellcheck >/dev/null || skip "no shellcheck (apt-get install shellcheck)"
    mapfile -t files < <(find deploy scripts tests -path '*/node_modules' -prune -o \
      -name '*.sh' -type f -print | sort)
    echo "shellcheck: ${files[*]}"
    shellcheck -x "${files[@]}"
    ;;
  dockerfile)
    /usr/bin/python3 tests/deploy/dockerfile_lint.py deploy/docker/Dockerfile
    ;;
  *)
    echo "usage: lint_test.sh yamllint|shellcheck|dockerfile" >&2
    exit 2
    ;;
esac
echo PASS
