#!/usr/bin/env bash
# Renders deploy/k8s (base, both overlays, the load test) and
# deploy/monitoring with `kubectl kustomize`, validates every object offline
# (tests/deploy/validate.js: kubernetes-models, the LWS and MPIJob CRDs in
# tests/data/k8s-crds, cross-references), then breaks objects on purpose to
# show the checks reject them. Exit 77 = skipped (no kubectl or npm packages:
# scripts/setup.sh installs both).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

skip() { echo "SKIPPED: $*"; exit 77; }
command -v node >/dev/null || skip "no node (scripts/setup.sh installs it)"
[ -d "$HERE/node_modules/kubernetes-models" ] || skip "no npm packages in tests/deploy (scripts/setup.sh runs npm ci there)"
KUBECTL="${KUBECTL:-$(command -v kubectl || true)}"
[ -n "$KUBECTL" ] || skip "no kubectl (scripts/setup.sh installs one)"
export KUBECTL
echo "kubectl: $("$KUBECTL" version --client 2>/dev/null | tr '\n' ' ')"
node "$HERE/validate.js"
echo PASS
