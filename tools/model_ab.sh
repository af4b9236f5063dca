#!/usr/bin/env bash
# Whole-model A/B of environment knobs on a GPU machine (issue 4): runs
# `zipcache bench ARGS` once per assignment in ENVS, alternating, REPS rounds, from one
# build (BUILD_DIR, default build-gpu, as tools/gpu_check.sh leaves it), so that every
# figure comes from the same card in the same minutes. Prints the table rows of each
# run; logs to $OUT (or $BUILD_DIR/logs).
#   ENVS="ZC_PDL=0 ZC_PDL=1" tools/model_ab.sh --synthetic llama3-8b -b 8 -c 4096 -n 40 --kv fp16
# (A=1,B=2 in ENVS sets two variables for one run.) BASE_APP=path/to/another/zipcache
# adds that binary (e.g. a base revision's build) as one more side of each round.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build-gpu}
out=${OUT:-$dir/logs}
app="$dir/apps/zipcache/zipcache"
[ -x "$app" ] || { echo "model_ab: no $app (run tools/gpu_check.sh first)"; exit 1; }
[ $# -gt 0 ] || { echo "usage: ENVS=\"A=0 A=1\" tools/model_ab.sh <zipcache bench arguments>"; exit 1; }
mkdir -p "$out"
# Debian libraries unpacked by gpu_check.sh, when the machine lacks them.
[ -d /opt/zcdeps ] && export LD_LIBRARY_PATH=/opt/zcdeps/usr/lib/x86_64-linux-gnu:/opt/zcdeps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
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
