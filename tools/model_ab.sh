#!/usr/bin/env bash
# Whole-model A/B of environment knobs on a GPU machine (issue 4): runs
# `zipcache bench ARGS` once per assignment in ENVS, alternating, REPS rounds, from one
# build (BUILD_DIR, default build-gpu, as tools/gpu_check.sh leaves it), so that every
# figure comes from the same card in the same minutes. Prints the table rows of each
# run; logs to $OUT (or $BUILD_DIR/logs).
#   ENVS="ZC_PDL=0 ZC_PDL=1" tools/model_ab.sh --synthetic llama3-8b -b 8 -c 4096 -n 40 --kv fp16
# (A=1,B=2 in ENVS sets two variables for one run.) BASE_APP=path/to/another/zipcache
# adds that binary as one more side of each round; BASE=<revision> builds it first
# from that revision (or from a carried build-ab/base-src, the base's files, e.g.
# `git archive HEAD | tar -x -C build-ab/base-src`: a GPU machine's .git may lag) in
# build-ab/base-app, beside the working tree's app, which is built too when missing:
#   BASE=HEAD tools/model_ab.sh --synthetic llama3-8b -b 8 -c 4096 -n 40 --kv zipcache --budget 60
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build-gpu}
out=${OUT:-$dir/logs}
app="$dir/apps/zipcache/zipcache"
[ $# -gt 0 ] || { echo "usage: ENVS=\"A=0 A=1\" [BASE=rev] tools/model_ab.sh <zipcache bench arguments>"; exit 1; }
mkdir -p "$out"
# Debian libraries from .gpudeps/debs, when the machine lacks them (as gpu_check.sh).
source tools/gpu_deps.sh
build_app() {  # build_app SOURCE BUILD_DIR
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" "${deps_args[@]}" \
    >"$out/build_$(basename "$2").log" 2>&1 &&
    cmake --build "$2" -j "$(nproc)" --target zipcache >>"$out/build_$(basename "$2").log" 2>&1 ||
    { echo "model_ab: building $1 in $2 failed ($out/build_$(basename "$2").log)"; grep -E "error" "$out/build_$(basename "$2").log" | head; exit 1; }
}
if [ -n "${BASE:-}" ]; then
  if [ ! -f build-ab/base-src/CMakeLists.txt ]; then
    mkdir -p build-ab/base-src
    git archive "$BASE" | tar -x -C build-ab/base-src || { echo "model_ab: cannot read revision $BASE"; exit 1; }
  fi
  build_app build-ab/base-src build-ab/base-app
  BASE_APP=build-ab/base-app/apps/zipcache/zipcache
  echo "base: $BASE ($(bash build-ab/base-src/tools/source_id.sh)); new: the working tree ($(tools/source_id.sh))" |
    tee -a "$out/model_ab.txt"
fi
[ -x "$app" ] || build_app . "$dir"
status=0
run() {  # run LABEL APP ENV ARGS...
  local label=$1 bin=$2 env=$3
  shift 3
  echo "== $label $env (round $rep): zipcache bench $*" | tee -a "$out/model_ab.txt"
  env ${env//,/ } timeout "${TIMEOUT:-300}" "$bin" bench "$@" >"$out/model_ab_run.txt" 2>&1 || status=1
  grep -E "^\| [a-z]" "$out/model_ab_run.txt" | tee -a "$out/model_ab.txt"
  grep -iE "error|what" "$out/model_ab_run.txt" | head -3 | tee -a "$out/model_ab.txt"
}
for rep in $(seq 1 "${REPS:-2}"); do
  [ -n "${BASE_APP:-}" ] && run base "$BASE_APP" ZC_NONE=0 "$@"
  for env in ${ENVS:-ZC_NONE=0}; do
    run new "$app" "$env" "$@"
  done
done
exit $status
