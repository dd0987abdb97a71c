#!/usr/bin/env bash
# The README's test command: installs what the build needs, builds the release preset and runs
# every test (labels unit, verification, slow, install; CUDA tests skip without a device).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release "$@"
