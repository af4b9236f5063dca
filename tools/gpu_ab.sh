#!/usr/bin/env bash
# A/B of the decode-attention kernels on a GPU machine: builds zc_gpu_bench from a base
# revision (BASE, default HEAD) and from the working tree, then runs both, alternating,
# with the same arguments, so the two figures come from one run on one card.
# The GPU machine's copy of .git can lag behind the tree it gets (its HEAD may be an
# older commit): carry a build-ab/base-src made here to be sure of the base; ab.txt
# names both sides by tools/source_id.sh, to compare with a checkout.
#   tools/gpu_ab.sh [zc_gpu_bench arguments...]      (default: --batch 8, then --batch 256)
# BASE=none skips the base build; ENVS="ZC_X=0 ZC_X=1" runs the working tree's bench once
# per environment assignment (knob A/B within one build; A=1,B=2 sets two). A carried build-ab/base-src
# (the base's files, e.g. `git archive HEAD | tar -x -C build-ab/base-src`) is used as is.
# Also runs the decode tests of the working tree (TESTS=0 skips them). Logs to $OUT
# (or build-ab/logs); ab.txt is appended to, so that several calls in one command keep
# every figure.
set -uo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-HEAD}
out=${OUT:-build-ab/logs}
arch=${CUDA_ARCH:-90}
jobs=$(nproc)
envs=${ENVS:-ZC_NONE=0}
mkdir -p "$out"
sides=(new)
if [ "$base" != none ]; then
  sides=(base new)
  if [ ! -f build-ab/base-src/CMakeLists.txt ]; then
    mkdir -p build-ab/base-src
    git archive "$base" | tar -x -C build-ab/base-src || { echo "cannot read revision $base"; exit 1; }
  fi
fi
echo "base: $base; new: the working tree (HEAD $(git rev-parse --short HEAD 2>/dev/null))" | tee -a "$out/ab.txt"
echo "sources: new $(tools/source_id.sh)$([ "$base" != none ] && echo ", base $(bash build-ab/base-src/tools/source_id.sh)")" |
  tee -a "$out/ab.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$out/ab.txt"
for side in "${sides[@]}"; do
  src=$([ "$side" = base ] && echo build-ab/base-src || echo .)
  cmake -S "$src" -B "build-ab/$side" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DZC_GPU_ONLY=ON >"$out/cmake_$side.log" 2>&1 || { echo "configure $side failed"; tail "$out/cmake_$side.log"; exit 1; }
  targets=(--target zc_gpu_bench)
  [ "$side" = new ] && [ "${TESTS:-1}" = 1 ] && targets+=(test_cuda)
  cmake --build "build-ab/$side" -j "$jobs" "${targets[@]}" >"$out/build_$side.log" 2>&1 ||
    { echo "build $side failed"; grep -E "error" "$out/build_$side.log" | head -20; exit 1; }
done
if [ "${TESTS:-1}" = 1 ]; then
  for env in $envs; do
    env ${env//,/ } build-ab/new/tests/test_cuda --gtest_filter='CudaDecode*:CudaGpuCache*' >"$out/test_decode.log" 2>&1
    rc=$?
    echo "decode tests (new, $env): $([ $rc -eq 0 ] && echo ok || echo FAILED)" | tee -a "$out/ab.txt"
    grep -E "^\[  (PASSED|FAILED) |Failure|max \|ref" "$out/test_decode.log" | head -20 | tee -a "$out/ab.txt"
  done
fi
run_pair() {
  for rep in 1 2; do
    for side in "${sides[@]}"; do
      for env in $envs; do
        echo "== $side $env (rep $rep): zc_gpu_bench $*" | tee -a "$out/ab.txt"
        env ${env//,/ } "build-ab/$side/zc_gpu_bench" "$@" 2>&1 | grep -vE "^$|^GPU:|^method" | tee -a "$out/ab.txt"
      done
    done
  done
}
if [ $# -eq 0 ]; then
  run_pair --batch 8 --methods fp16,zipcache
  run_pair --batch 256 --contexts 4096 --reps 20 --methods fp16,zipcache
else
  run_pair "$@"
fi
exit 0
