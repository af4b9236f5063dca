#!/usr/bin/env bash
# Where the GPU kernels spend their time, for the kernel work of issue 4 (run on the GPU
# machine; needs ncu): builds the kernel targets with -lineinfo in build-prof and, under
# Nsight Compute, profiles one launch of
#  - each decode split kernel (zc_gpu_bench at batch 8 / context 16384 and batch 256 /
#    context 4096, SHAPES="b:ctx ..." to change: the tensor-core kernel on ZipCache's and
#    fp16's pages): duration, instructions, active warps, issue slots, DRAM throughput
#    and the warp-stall breakdown (sampled);
#  - the ZipCache prompt's cache kernels (CudaGpuCache.TimingPrefillLlama3Shape): GPU time
#    per kernel, summed over the test's calls (PREFILL=0 skips it).
# Reports (.ncu-rep, open in the Nsight Compute GUI for source-level detail) and text go
# to $OUT (or build-prof/profile).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=build-prof
out=${OUT:-$dir/profile}
mkdir -p "$out"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" -DZC_GPU_ONLY=ON \
  -DCMAKE_CUDA_FLAGS=-lineinfo >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
cmake --build "$dir" -j "$(nproc)" --target zc_gpu_bench test_cuda >"$out/build.log" 2>&1 ||
  { grep -E "error" "$out/build.log" | head -30; exit 1; }

stalls() {  # the raw page of one report: time, instructions, warps, sampled stall reasons
  ncu --import "$1" --page raw --csv >"$1.raw.csv" 2>&1
  python3 - "$1.raw.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, units, vals = rows[0], rows[1], rows[2]
m, unit = dict(zip(head, vals)), dict(zip(head, units))
def num(k):
    try:
        return float(m.get(k, "0").replace(",", "") or 0)
    except ValueError:
        return 0.0
print("  duration %.1f %s, %.1f M warp instructions, %s registers, %.1f%% of warp slots active" % (
    num("gpu__time_duration.sum"), unit.get("gpu__time_duration.sum", ""), num("smsp__inst_executed.sum") / 1e6,
    m.get("launch__registers_per_thread", "?"), num("sm__warps_active.avg.pct_of_peak_sustained_active")))
print("  issue slots busy %.1f%%, eligible warps per scheduler %.2f, DRAM throughput %.1f%% of peak" % (
    num("smsp__issue_active.avg.pct_of_peak_sustained_active"), num("smsp__warps_eligible.avg.per_cycle_active"),
    num("dram__throughput.avg.pct_of_peak_sustained_elapsed")))
pre = "smsp__pcsamp_warps_issue_stalled_"
st = {k[len(pre):]: num(k) for k in m if k.startswith(pre) and not k.endswith("_not_issued")}
total = sum(st.values()) or 1
for k, v in sorted(st.items(), key=lambda x: -x[1])[:8]:
    print("  %5.1f%% %s" % (100 * v / total, k))
PY
}

# batch:context pairs: the latency regime (batch 8) and the throughput regime (batch
# 256, every SM full of CTAs, as at a memory budget's largest batch).
for shape in ${SHAPES:-8:16384 256:4096}; do
  b=${shape%%:*} ctx=${shape##*:}
  for m in ${METHODS:-zipcache fp16}; do
    echo "decode split kernel, $m pages (batch $b, context $ctx):"
    ncu -f -k regex:"decode_mma_kernel|decode_split" --launch-skip 8 --launch-count 1 --section SourceCounters \
      --section WarpStateStats --section LaunchStats --section Occupancy --section SchedulerStats \
      --section SpeedOfLight --import-source yes -o "$out/decode_${m}_b$b" \
      "$dir/zc_gpu_bench" --methods "$m" --batch "$b" --contexts "$ctx" --reps 10 >"$out/decode_${m}_b$b.log" 2>&1
    stalls "$out/decode_${m}_b$b.ncu-rep"
    # The SASS lines with the most stall samples (the hot spots of the page loop).
    ncu --import "$out/decode_${m}_b$b.ncu-rep" --page source --csv --print-source sass \
      >"$out/decode_${m}_b$b.sass.csv" 2>&1
    python3 - "$out/decode_${m}_b$b.sass.csv" <<'PY' 2>/dev/null
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 3]
head = rows[0]
col = next((i for i, h in enumerate(head) if h.startswith("Warp Stall Sampling (All")), None)
src = next((i for i, h in enumerate(head) if h == "Source"), 1)
if col is None:
    sys.exit(0)
def v(r):
    try:
        return float(r[col].replace(",", ""))
    except (ValueError, IndexError):
        return 0.0
body = rows[1:]
total = sum(v(r) for r in body) or 1
print("  hottest SASS (share of stall samples):")
for r in sorted(body, key=v, reverse=True)[:14]:
    print("   %5.1f%%  %s" % (100 * v(r) / total, r[src][:90]))
# Executed warp instructions by opcode (the first word after any predicate).
ex = head.index("Instructions Executed")
mix, n = {}, 0.0
for r in body:
    try:
        c = float(r[ex].replace(",", ""))
    except ValueError:
        continue
    words = r[src].split()
    if not words:
        continue
    op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
    op = op.split(".")[0]
    mix[op] = mix.get(op, 0.0) + c
    n += c
print("  executed instructions by opcode (%.1f M):" % (n / 1e6))
print("   " + ", ".join("%s %.1f%%" % (k, 100 * c / n) for k, c in sorted(mix.items(), key=lambda x: -x[1])[:24]))
PY
  done
done
[ "${PREFILL:-1}" = 1 ] || exit 0

echo "cache prefill kernels at the Llama-3 shape (GPU time summed over the timing test's calls):"
ZC_TIMING=1 ncu --metrics gpu__time_duration.sum --csv "$dir/tests/test_cuda" \
  --gtest_filter='CudaGpuCache.TimingPrefill*' >"$out/cache_prefill.csv" 2>"$out/cache_prefill.err"
python3 - "$out/cache_prefill.csv" <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]
name, value = head.index("Kernel Name"), head.index("Metric Value")
total, calls = collections.defaultdict(float), collections.Counter()
for r in rows[1:]:
    try:
        v = float(r[value].replace(",", ""))
    except ValueError:
        continue
    total[r[name][:80]] += v
    calls[r[name][:80]] += 1
for k, t in sorted(total.items(), key=lambda x: -x[1]):
    print(f"  {t / 1e3:10.1f} us in {calls[k]:5d} calls, {t / calls[k] / 1e3:8.2f} us each  {k}")
PY
