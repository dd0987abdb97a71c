#!/usr/bin/env bash
# Collects the CUDA backend's test, suite and benchmark programs and the shared libraries they need
# into one folder, for a GPU machine that lacks Debian's development packages (docs/gpu.md).
#
#   scripts/gpu_bundle.sh [BUILD_DIR] [DEST]      defaults: build-cuda, .device
#
# bin/          the programs (cuda_bench, scoring_cuda_backend_test, verification_cuda_*_suite,
#               scoresde when built), RPATH left as built
# lib/          every library ldd resolves for them, except the C runtime (libc, libm, libdl,
#               libmvec, libpthread, librt, ld-linux, libstdc++, libgcc_s) and the CUDA driver and toolkit
#               libraries (libcuda, libcudart, libcublas, libcublasLt), which come from the GPU
#               machine itself
# are staged and packed into DEST/bundle.tar.xz (what travels); DEST/run.sh unpacks it once into
# DEST/unpacked and runs a program from it with LD_LIBRARY_PATH set for that program only:
#                 .device/run.sh .device/bin/scoring_cuda_backend_test
# DEST is meant to be ignored by git (.git/info/exclude: /.device/).
set -euo pipefail

build=${1:-build-cuda}
dest=${2:-.device}
stage="$dest/stage"
rm -rf "$stage" "$dest/unpacked"
mkdir -p "$stage/bin" "$stage/lib"

programs=()
for p in benchmarks/cuda_bench scoring/scoring_cuda_backend_test \
         verification/verification_cuda_agreement_suite verification/verification_cuda_sampling_suite \
         apps/scoresde/scoresde; do
  if [[ -x "$build/$p" ]]; then
    programs+=("$build/$p")
    cp "$build/$p" "$stage/bin/"
  fi
done
if [[ ${#programs[@]} -eq 0 ]]; then
  echo "gpu_bundle.sh: no programs found under $build (build the cuda targets first)" >&2
  exit 1
fi

skip='^(libc|libm|libmvec|libdl|libpthread|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|linux-vdso)\.so'
for p in "${programs[@]}"; do
  ldd "$p" | awk '/=>/ {print $1, $3}' | while read -r name path; do
    if [[ "$name" =~ $skip ]] || [[ "$path" == "not" ]] || [[ -z "$path" ]]; then
      continue
    fi
    cp -L -n "$path" "$stage/lib/$name"
  done
done

tar -C "$stage" -cJf "$dest/bundle.tar.xz" bin lib
cat > "$dest/run.sh" <<'RUN'
#!/usr/bin/env bash
# Unpacks bundle.tar.xz next to this script (once) and runs "$@" with its libraries and the
# machine's CUDA libraries on LD_LIBRARY_PATH.
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d "$here/unpacked" ]]; then
  mkdir -p "$here/unpacked" && tar -C "$here/unpacked" -xJf "$here/bundle.tar.xz"
fi
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -e "$d/libcublas.so.13" ]] && cuda_libs="$cuda_libs:$d"
done
if [[ -z "$cuda_libs" ]]; then
  # PyTorch's wheels carry cuBLAS and the runtime (nvidia-cublas, nvidia-cuda-runtime).
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null || true)
  for d in "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib; do
    [[ -d "$d" ]] && cuda_libs="$cuda_libs:$d"
  done
fi
export LD_LIBRARY_PATH="$here/unpacked/lib${cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
prog=$1
shift
# A bundled program may be named by any path ending in its name (e.g. .device/bin/cuda_bench).
if [[ -x "$here/unpacked/bin/$(basename "$prog")" ]]; then
  prog="$here/unpacked/bin/$(basename "$prog")"
fi
exec "$prog" "$@"
RUN
chmod +x "$dest/run.sh"
echo "gpu_bundle.sh: $(ls "$stage/bin" | wc -l) programs, $(ls "$stage/lib" | wc -l) libraries" \
     "($(du -sh "$stage" | cut -f1)); $dest/bundle.tar.xz $(du -h "$dest/bundle.tar.xz" | cut -f1)"
rm -rf "$stage"
