#!/usr/bin/env bash
# Builds with warnings as errors and runs every test, then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the tests once more.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
echo "== release build (-Werror) =="
tools/build.sh build -DZC_WERROR=ON
(cd build && ctest --output-on-failure -j "$jobs")
echo "== sanitizer build (ASan + UBSan, -Werror) =="
tools/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZC_WERROR=ON -DZC_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ZC_SANITIZED=1 ctest --output-on-failure -j "$jobs")
