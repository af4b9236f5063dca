#!/usr/bin/env bash
# Builds only the zipcache program (no tests) and runs the demo on the bundled model:
# a ~2000-token line-retrieval prompt answered with the fp16 cache and with ZipCache.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DZC_BUILD_TESTS=OFF -DZC_BUILD_BENCH=OFF >/dev/null
cmake --build build-demo --target zipcache -j "$(nproc)"
build-demo/apps/zipcache/zipcache demo "$@"
