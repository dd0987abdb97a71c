#!/usr/bin/env bash
# Installs the Debian packages scoresde needs, only those missing. Runs as root (or with sudo).
#
#   scripts/setup.sh [GROUP...]     groups: build (default), demo, docs, bench, data, all
#
#   build  compilers' libraries: Eigen, Boost (Odeint), Ceres, Random123, GoogleTest,
#          Google Benchmark, CLI11, nlohmann-json, gcovr
#   demo   what `scoresde demo` plots with: matplotlib
#   docs   Doxygen for the API reference
#   bench  peers for side-by-side comparisons: PyTorch, SciPy, jemalloc, safetensors' format check
#   data   Fashion-MNIST (Debian's dataset-fashion-mnist)
set -euo pipefail

declare -A GROUPS_PACKAGES=(
  [build]="cmake ninja-build g++ pkg-config libeigen3-dev libboost-dev libceres-dev librandom123-dev
           libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev gcovr zlib1g-dev"
  [demo]="python3 python3-numpy python3-matplotlib"
  [docs]="doxygen graphviz"
  [bench]="python3 python3-numpy python3-scipy python3-torch libjemalloc2"
  [data]="dataset-fashion-mnist"
)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)
if [ "${groups[0]}" = "all" ]; then groups=(build demo docs bench data); fi

wanted=()
for group in "${groups[@]}"; do
  if [ -z "${GROUPS_PACKAGES[$group]+x}" ]; then
    echo "setup.sh: unknown group '$group' (build, demo, docs, bench, data, all)" >&2
    exit 2
  fi
  for package in ${GROUPS_PACKAGES[$group]}; do wanted+=("$package"); done
done

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all packages for '${groups[*]}' are installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
