#!/usr/bin/env bash
# Coverage of library code: builds the coverage preset, runs the tests, writes
# build/coverage/coverage.html and prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
cmake --preset coverage
cmake --build --preset coverage -j "$(nproc)"
find build/coverage -name '*.gcda' -delete
status=0
ctest --preset coverage "$@" || status=$?
gcovr --root . --object-directory build/coverage \
  --filter 'sde/src/' --filter 'sde/include/' --filter 'solvers/src/' --filter 'solvers/include/' \
  --filter 'scoring/src/' --filter 'scoring/include/' \
  --filter 'verification/src/' --filter 'verification/include/' \
  --exclude '.*/tests/.*' --exclude '.*/suites/.*' \
  --html-details build/coverage/coverage.html --print-summary
exit "$status"
