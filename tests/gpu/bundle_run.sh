#!/usr/bin/env bash
# run PROGRAM [ARGS...]: runs one of a GPU bundle's programs (made by
# scripts/gpu_bundle.sh, which copies this file in as bundle/run) with the
# bundle's libraries and this machine's NVIDIA ones.
#
# HYDRA_BUNDLE_GLIBC=system|bundled forces the choice of glibc (default:
# this machine's when it is new enough, else the bundled one).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# >= 1)) || {
  echo "usage: $0 PROGRAM [ARGS...]; programs: $(ls "${here}/bin")" >&2
  exit 2
}
program="${here}/bin/$1"
shift
[[ -x ${program} && -f ${program} ]] || {
  echo "run: no program ${program}" >&2
  exit 127
}

# The folders holding cuBLAS/cuBLASLt 13 and NCCL 2 on this machine: the
# toolkit's, then those of NVIDIA's Python wheels. Found once, then cached.
nvidia_dirs() {
  local cache="${here}/nvidia_dirs"
  if [[ ! -s ${cache} ]]; then
    local roots=(/usr/local/cuda/lib64 /usr/local/cuda/lib
      /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
    local py
    for py in python3 /usr/bin/python3; do
      command -v "${py}" >/dev/null || continue
      mapfile -t -O "${#roots[@]}" roots < <("${py}" -c \
        'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null)
    done
    local lib dirs=()
    for lib in libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
      local found
      found="$(find "${roots[@]}" -maxdepth 5 -name "${lib}" 2>/dev/null |
        head -n 1)"
      if [[ -z ${found} ]]; then
        echo "run: ${lib} not found under ${roots[*]}" >&2
        continue
      fi
      dirs+=("$(dirname "${found}")")
    done
    printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd: >"${cache}"
  fi
  cat "${cache}"
}

export HYDRA_CUDA_PLUGIN="${here}/bin/libhydra_cuda.so"
export HYDRA_SENTENCEPIECE_PLUGIN="${here}/bin/libhydra_sentencepiece.so"
libs="${here}/lib:$(nvidia_dirs)${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"

mode="${HYDRA_BUNDLE_GLIBC:-}"
if [[ -z ${mode} ]]; then
  have="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
  need="$(cat "${here}/glibc/NEEDED")"
  if [[ -n ${have} && "$(printf '%s\n%s\n' "${need}" "${have}" |
    sort -V | head -n 1)" == "${need}" ]]; then
    mode=system
  else
    mode=bundled
  fi
fi
if [[ ${mode} == system ]]; then
  LD_LIBRARY_PATH="${libs}" exec "${program}" "$@"
fi
# The bundled loader with the bundled glibc first; the driver's libcuda is
# still found through this machine's loader cache.
exec "${here}/glibc/ld-linux-x86-64.so.2" --library-path \
  "${here}/glibc:${libs}" "${program}" "$@"
