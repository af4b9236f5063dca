#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine (issue 4): configure for sm_90 (override
# with CUDA_ARCH=80 etc.; WERROR=ON adds -Werror), build, run test_cuda, the decode bandwidth benchmark,
# compute-sanitizer memcheck on test_cuda, then the other test binaries. Logs and the
# benchmark's JSON go to $OUT (or build-gpu/logs); summary.txt has one line per step.
# Where PCRE2, utf8proc, OpenBLAS or Google Benchmark are missing, only the layers the
# CUDA backend needs are built (-DZC_GPU_ONLY=ON). Exit status: nonzero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build-gpu}
out=${OUT:-$dir/logs}
arch=${CUDA_ARCH:-90}
jobs=$(nproc)
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
failed=0
step() {  # step NAME STATUS
  echo "$1: $([ "$2" -eq 0 ] && echo ok || echo "FAILED ($2)")" | tee -a "$summary"
  [ "$2" -eq 0 ] || failed=1
}

{
  date -u +"date: %Y-%m-%dT%H:%MZ"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>&1
  nvcc --version | tail -2
  cmake --version | head -1
} | tee -a "$summary"

extra=()
missing=()
pkg-config --exists libpcre2-8 2>/dev/null || missing+=(pcre2)
pkg-config --exists libutf8proc 2>/dev/null || missing+=(utf8proc)
ls /usr/include/cblas.h /usr/include/*/cblas.h /usr/include/*/*/cblas.h >/dev/null 2>&1 || missing+=(cblas)
ls /usr/lib/*/cmake/benchmark /usr/local/lib/cmake/benchmark /usr/lib/cmake/benchmark >/dev/null 2>&1 || missing+=(benchmark)
if ((${#missing[@]})); then
  echo "missing: ${missing[*]} -> -DZC_GPU_ONLY=ON" | tee -a "$summary"
  extra+=(-DZC_GPU_ONLY=ON)
fi

# -Werror is CI's job (its compiler); a GPU machine's newer g++ may warn differently.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DZC_WERROR="${WERROR:-OFF}" "${extra[@]}" >"$out/build.log" 2>&1
step configure $?
start=$(date +%s)
cmake --build "$dir" -j "$jobs" >>"$out/build.log" 2>&1
status=$?
step "build ($(($(date +%s) - start)) s)" $status
[ $status -eq 0 ] || grep -E "error|Error" "$out/build.log" | head -30 | tee -a "$summary"

"$dir/tests/test_cuda" >"$out/test_cuda.log" 2>&1
step test_cuda $?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" "$out/test_cuda.log" | tee -a "$summary"

"$dir/zc_gpu_bench" --json "$out/bench.json" >"$out/bench.txt" 2>&1
step bench $?
cat "$out/bench.txt"

if command -v compute-sanitizer >/dev/null; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 1 "$dir/tests/test_cuda" \
    >"$out/memcheck.log" 2>&1
  step "compute-sanitizer memcheck" $?
  tail -3 "$out/memcheck.log" | tee -a "$summary"
else
  echo "compute-sanitizer: not found" | tee -a "$summary"
fi

(cd "$dir" && timeout 300 ctest -j "$jobs" -E '^Cuda' --timeout 240) >"$out/other_tests.log" 2>&1
step "other tests (ctest -E Cuda)" $?
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/other_tests.log" | head -20 | tee -a "$summary"
exit $failed
