#!/usr/bin/env bash
# Builds the API reference with Doxygen (docs/Doxyfile): HTML in OUT_DIR (default
# build/api-reference/html). Installs Doxygen when missing (scripts/setup.sh docs). Fails on any
# Doxygen warning, and prints them.
#
#   bash scripts/docs.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/api-reference}"
command -v doxygen >/dev/null || bash scripts/setup.sh docs
mkdir -p "$out"
log="$out/doxygen-warnings.txt"
# The Doxyfile's settings, with the output folder and the warning log from here.
( cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; echo "WARN_LOGFILE = $log" ) | doxygen - \
    || { cat "$log" >&2; echo "docs.sh: doxygen failed" >&2; exit 1; }
if [ -s "$log" ]; then
  cat "$log" >&2
  echo "docs.sh: $(wc -l < "$log") warning line(s); the reference must build without any" >&2
  exit 1
fi
echo "docs.sh: API reference in $out/html/index.html (no warnings)"
