#!/usr/bin/env bash
# The README's main-job command: installs what is needed, builds, and runs `scoresde demo`.
# Extra arguments go to `scoresde demo` (see `scoresde demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build demo
cmake --preset release
cmake --build --preset release -j "$(nproc)" --target scoresde_cli
./build/release/apps/scoresde demo "$@"
