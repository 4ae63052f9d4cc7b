#!/usr/bin/env bash
# gRPC health check (grpc.health.v1.Health/Check) with nothing but curl:
# exits 0 when the server answers SERVING, 1 otherwise (NOT_SERVING while
# loading or draining, no answer, an error). The image's HEALTHCHECK; on
# Kubernetes the kubelet's own `grpc:` probes do the same.
#   hydra-healthcheck [HOST:PORT] [SERVICE]
# HOST:PORT defaults to 127.0.0.1:${FLAGS_port:-50051}; SERVICE to "" (the
# whole server); "hydra.v1.Inference" asks about the inference service.
set -euo pipefail

target="${1:-127.0.0.1:${FLAGS_port:-50051}}"
service="${2:-}"
if [ ${#service} -gt 120 ]; then
  echo "hydra-healthcheck: service name too long" >&2
  exit 2
fi

# The request: a gRPC frame (uncompressed flag, 4-byte big-endian length)
# holding HealthCheckRequest{service}: field 1, wire type 2 (0x0a), length.
request() {
  local n=${#service}
  if [ "$n" -eq 0 ]; then
    printf '\0\0\0\0\0'
  else
    printf "\\0\\0\\0\\0\\$(printf '%03o' $((n + 2)))\\n\\$(printf '%03o' "$n")%s" "$service"
  fi
}

# The answer for SERVING: a 2-byte HealthCheckResponse{status: 1} (08 01).
reply="$(request | curl -sS --max-time "${HYDRA_HEALTH_TIMEOUT:-3}" --http2-prior-knowledge \
  -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
  "http://$target/grpc.health.v1.Health/Check" | od -An -tx1 | tr -d ' \n')" || {
  echo "hydra-healthcheck: no answer from $target" >&2
  exit 1
}
case "$reply" in
  00000000020801) exit 0 ;;
  00000000020802) echo "hydra-healthcheck: $target is NOT_SERVING" >&2; exit 1 ;;
  "") echo "hydra-healthcheck: no status from $target (unknown service '$service'?)" >&2; exit 1 ;;
  *) echo "hydra-healthcheck: unexpected answer from $target: '$reply'" >&2; exit 1 ;;
esac
