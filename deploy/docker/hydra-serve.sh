#!/usr/bin/env bash
# The image's entrypoint: `hydra serve` with its flags from, later ones
# winning,
#   0. --host=0.0.0.0 --metrics_host=0.0.0.0: a container listens on every
#      interface (a bare `hydra serve` listens on 127.0.0.1 only);
#   1. $HYDRA_FLAGFILE (default /etc/hydra/serve.flags): an abseil flagfile,
#      one --flag=value a line; on Kubernetes the ConfigMap mounted there;
#   2. FLAGS_<name> environment variables (FLAGS_port=50052,
#      FLAGS_api_key_file naming a mounted Secret, ...), for every flag of
#      `hydra serve`;
#   3. the arguments (`docker run IMAGE --max_running=64`).
# Under mpirun every rank runs this same script. HYDRA_BIN overrides the
# binary (the tests run it against build/cli/hydra).
set -euo pipefail

hydra="${HYDRA_BIN:-/usr/local/bin/hydra}"
flagfile="${HYDRA_FLAGFILE:-/etc/hydra/serve.flags}"
serve_flags=model,host,port,metrics_host,metrics_port,http_port,tp,kv_cache_bytes,block_size
serve_flags+=,max_model_len,max_batched_tokens,max_running,max_waiting,prefix_cache
serve_flags+=,max_step_ms,max_partial_prefills,pinned_kv_fraction
serve_flags+=,tls_cert,tls_key,api_key,api_key_file,drain_seconds,device,gpu_memory_fraction
serve_flags+=,chat_template

# (A name the binary does not define is ignored by --tryfromenv.)
args=(--host=0.0.0.0 --metrics_host=0.0.0.0)
if [ -f "$flagfile" ]; then args+=("--flagfile=$flagfile"); fi
args+=("--tryfromenv=$serve_flags")
exec "$hydra" serve "${args[@]}" "$@"
