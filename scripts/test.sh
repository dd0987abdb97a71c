#!/usr/bin/env bash
# The README's test command: installs what the build needs, builds the release preset and runs
# every test (labels unit, verification, slow, install, docs; CUDA tests skip without a device).
# The demo group (Python with NumPy and matplotlib) is installed too: the demo's and the docs'
# tests run the plotting script and the docs' Python snippets as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build demo
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release "$@"
