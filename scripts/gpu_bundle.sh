#!/usr/bin/env bash
# Builds hydra with -DHYDRA_CUDA=ON here and packs the GPU check's binaries
# with every shared library they need, for a GPU machine that cannot build
# hydra itself (its image has CUDA but not Debian's gRPC, abseil, protobuf,
# GoogleTest or Open MPI, and nothing can be installed there).
#
# The bundle holds everything but the NVIDIA libraries: the driver's
# libcuda and the CUDA 13 cuBLAS/cuBLASLt/NCCL come from the GPU machine
# (the toolkit or its Python wheels; cuBLASLt alone is larger than a device
# call may carry). glibc travels too, in its own folder, for a machine whose
# glibc is older than Debian 12's. bundle/run picks the loader and the
# library path there. tests/gpu/run.sh --prebuilt=BUNDLE uses it.
#
# --pack also writes two xz tarballs for the device tool's `carry`, each
# unpacked at the checkout's root by tests/gpu/run.sh --prebuilt:
#   .gpu-carry/gpu-bundle.tar.xz          the bundle
#   .gpu-carry-model/stories15M.tar.xz    models/stories15M (58 MiB, 45 packed)
# A device call carries at most 64 MiB with the checkout; when both do not
# fit in one, carry the model in a first call on the same warm machine
# (unpacked, it stays there as an ignored path) and the bundle in a second.
#
# Usage: scripts/gpu_bundle.sh [--pack] [BUILD_DIR] [BUNDLE_DIR]
#        (defaults: build-cuda, .gpu-bundle; all outputs git-ignored)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pack=0
if [[ ${1:-} == --pack ]]; then
  pack=1
  shift
fi
build="$(realpath -m "${1:-${root}/build-cuda}")"
bundle="$(realpath -m "${2:-${root}/.gpu-bundle}")"

programs=(kernels_gpu_test forward_gpu_test nccl_gpu_test engine_gpu_test
  cuda_plan_test hydra_gpu_bench hydra)
plugins=(hydra_cuda hydra_sentencepiece)

if [[ ! -f "${build}/CMakeCache.txt" ]]; then
  cmake -S "${root}" -B "${build}" -DCMAKE_BUILD_TYPE=Release -DHYDRA_CUDA=ON
fi
grep -q '^HYDRA_CUDA:BOOL=ON' "${build}/CMakeCache.txt" || {
  echo "gpu_bundle: ${build} is not configured with -DHYDRA_CUDA=ON" >&2
  exit 1
}
cmake --build "${build}" -j"$(nproc)" --target "${programs[@]}" "${plugins[@]}"

rm -rf "${bundle}"
mkdir -p "${bundle}/bin" "${bundle}/lib" "${bundle}/glibc"
for name in "${programs[@]}"; do
  path="$(find "${build}" -path "${build}/CMakeFiles" -prune -o -type f \
    -name "${name}" -perm -u+x -print | head -n 1)"
  [[ -n "${path}" ]] || {
    echo "gpu_bundle: no ${name} under ${build}" >&2
    exit 1
  }
  cp "${path}" "${bundle}/bin/"
done
# Next to the programs, where the plugin loader looks first.
for name in "${plugins[@]}"; do cp "${build}/lib/lib${name}.so" "${bundle}/bin/"; done

# Every library the programs and plugins load, resolved here. NVIDIA's stay
# behind; glibc's own libraries go to glibc/, used only where needed.
is_nvidia() { [[ $1 =~ ^lib(cuda|cudart|cublas|cublasLt|nccl)\.so ]]; }
is_glibc() { [[ $1 =~ ^(libc|libm|libdl|libpthread|librt|libresolv|libutil)\.so|^ld-linux ]]; }
ldd "${bundle}"/bin/* 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r soname path; do
  if is_nvidia "${soname}"; then continue; fi
  if is_glibc "${soname}"; then
    cp -L "${path}" "${bundle}/glibc/${soname}"
  else
    cp -L "${path}" "${bundle}/lib/${soname}"
  fi
done
cp -L /lib64/ld-linux-x86-64.so.2 "${bundle}/glibc/"
# cudart is small and pins the runtime the code was built against.
cp -L "$(ldd "${bundle}/bin/libhydra_cuda.so" | awk '$1 ~ /^libcudart/ {print $3}')" \
  "${bundle}/lib/"

# The newest glibc symbol version anything here needs: bundle/run uses the
# machine's own glibc when it is at least this new.
needed_glibc="$(objdump -T "${bundle}"/bin/* "${bundle}"/lib/* 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
echo "${needed_glibc}" >"${bundle}/glibc/NEEDED"
git -C "${root}" rev-parse HEAD >"${bundle}/COMMIT"
cp "${root}/tests/gpu/bundle_run.sh" "${bundle}/run"
chmod +x "${bundle}/run"

echo "gpu_bundle: ${bundle} ($(du -sh "${bundle}" | cut -f1)), needs glibc ${needed_glibc}" \
  "or the bundled one, commit $(cut -c1-12 "${bundle}/COMMIT")"

if ((pack)); then
  model="${root}/models/stories15M"
  [[ -f ${model}/model.safetensors ]] || {
    echo "gpu_bundle: no ${model} to pack (scripts/setup.sh --model-only)" >&2
    exit 1
  }
  mkdir -p "${root}/.gpu-carry" "${root}/.gpu-carry-model"
  # Paths relative to the checkout's root, where run.sh unpacks them.
  tar -C "${root}" -cf - "$(realpath --relative-to="${root}" "${bundle}")" |
    xz -T0 -9 >"${root}/.gpu-carry/gpu-bundle.tar.xz"
  tar -C "${root}" -cf - models/stories15M |
    xz -T0 -9 >"${root}/.gpu-carry-model/stories15M.tar.xz"
  mib() { echo $(($1 >> 20)); }
  tree="$(git -C "${root}" ls-files -z | xargs -0 cat | wc -c)"
  packed="$(stat -c %s "${root}/.gpu-carry/gpu-bundle.tar.xz")"
  weights="$(stat -c %s "${root}/.gpu-carry-model/stories15M.tar.xz")"
  echo "gpu_bundle: bundle $(mib "${packed}") MiB, model $(mib "${weights}") MiB," \
    "checkout $(mib "${tree}") MiB; a device call carries 64 MiB"
  if ((tree + packed + weights <= 64 << 20)); then
    echo "gpu_bundle: one call: carry [\".gpu-carry\", \".gpu-carry-model\"]," \
      "run tests/gpu/run.sh --prebuilt"
  else
    echo "gpu_bundle: two calls: carry [\".gpu-carry-model\"] with" \
      "tests/gpu/run.sh --unpack-only, then carry [\".gpu-carry\"] with" \
      "tests/gpu/run.sh --prebuilt"
  fi
fi
