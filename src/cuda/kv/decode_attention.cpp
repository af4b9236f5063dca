// Host side of GPU decode attention (decode_attention.h): checks, split sizing and the
// workspace; the kernels are in decode_attention.cu.
#include "cuda/kv/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "cuda/kv/decode_launch.h"

namespace zc::cuda {

namespace {

// Which split kernel runs: ZC_DECODE_KERNEL=simt forces the SIMT one (benchmarks
// compare them; =mma or =auto: the default). Every cache takes the tensor-core kernel
// (decode_mma.cuh: its work per code is a few instructions, its cp.async ring keeps the
// memory busy, fp16 pages stream at 70-98% of the copy bandwidth). KIVI's one-page
// blocks (a query fold per page) took the SIMT one until the fold became one run of
// vector loads: KIVI-2 is 1.3-1.7x faster on it since (docs/benchmarks.md, session 8).

bool simt_forced() {
  static const bool simt = [] {
    const char* v = std::getenv("ZC_DECODE_KERNEL");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0 || std::strcmp(v, "mma") == 0) return false;
    if (std::strcmp(v, "simt") == 0) return true;
    fail("ZC_DECODE_KERNEL={} is not one of auto, simt, mma", v);
  }();
  return simt;
}

// ZC_DECODE_MERGE=always runs the merge kernel after the tensor-core kernel even with
// one split (default: the split kernel finishes each pair itself then; an A/B and test
// knob, read once).
bool merge_always() {
  static const bool always = [] {
    const char* v = std::getenv("ZC_DECODE_MERGE");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return false;
    if (std::strcmp(v, "always") == 0) return true;
    fail("ZC_DECODE_MERGE={} is not one of auto, always", v);
  }();
  return always;
}

// The SIMT kernel is short-lived per page and wants several waves of CTAs (eight per
// SM). The tensor-core one pays a fixed start (query fold, first copies) per CTA and
// measured fastest with one wave of as many CTAs as fit the SMs at once (`resident`,
// from the occupancy of its configuration; three per SM at d = 128): at batch 8, 6
// splits of 22 pages against the 5 of 28 that a target of two CTAs per SM with whole
// four-page tiles gave, ZipCache 30.9 -> 29.8 us at 4096 and 66.3 -> 59.7 us at 16384,
// KIVI-2 51.7 -> 45.0 us (docs/benchmarks.md, session 9). ZC_DECODE_CTAS_PER_SM
// overrides either.
// ZC_DECODE_TAIL=0 keeps every plan uniform (plan_for_slots's tail plans off; an A/B
// knob, read once; 1 or unset: on).
bool tail_plans() {
  static const bool on = env_int("ZC_DECODE_TAIL", 0, 1, 1) == 1;
  return on;
}

// ZC_DECODE_STAGE_KP=0 leaves page key blocks' parameters in the pool, read when the
// query is folded (an A/B knob, read once; 1 or unset: staged, PagedKvView::page_key_blocks).
bool stage_key_params() {
  static const bool on = env_int("ZC_DECODE_STAGE_KP", 0, 1, 1) == 1;
  return on;
}

int ctas_per_sm(int resident) {
  static const int n = env_int("ZC_DECODE_CTAS_PER_SM", 0, 64, 0);
  return n > 0 ? n : resident > 0 ? resident : 8;
}

// The split cost model of the tensor-core kernel past one wave (splits_for_slots,
// plan_for_slots), in units of a warp's page: every wave of CTAs a fixed start
// (kStartPages: session 14's trace at batch 8, ~9 us of start and finish against
// ~1.5 us per page) plus its CTAs' pages, a quarter per warp; a merge launch
// (kMergePages) once anything is split.
constexpr double kStartPages = 6.0, kMergePages = 2.0;

// `ctas` CTAs of `pages` pages each on `slots` slots, in whole waves.
double waves_cost(int64_t ctas, int pages, int slots) {
  return double((ctas + slots - 1) / slots) * (kStartPages + double(pages) / 4.0);
}

// The kernel configuration fields of DecodeParams (everything but buffers and the plan).
detail::DecodeParams kernel_config(const DecodeShape& shape, const PagedKvView& kv) {
  detail::DecodeParams p;
  p.n_heads = shape.n_heads;
  p.n_kv = shape.n_kv_heads;
  p.g = shape.n_heads / shape.n_kv_heads;
  p.d = shape.head_dim;
  p.groups = kv.max_value_groups;
  p.simt = !use_tensor_cores();
  p.quantized = kv.quantized;
  p.stage_kp = kv.quantized && kv.page_key_blocks && stage_key_params();
  return p;
}

// The launch a plan becomes for lists of up to max_pages pages.
struct Launch {
  int splits = 1, per_split = 1, whole = 0;
};
Launch resolve_launch(const detail::DecodeParams& p, int pairs, int max_pages, const SplitPlan& plan) {
  const int resident = detail::resident_ctas(p);
  const SplitPlan use = plan.splits > 0 ? plan
                                        : plan_for_slots(pairs, max_pages, sm_count() * ctas_per_sm(resident),
                                                         resident > 0, tail_plans());
  Launch l;
  l.splits = std::min({use.splits, max_pages, 4096});  // the merge keeps (m, l) per split in 32 KB
  // As few splits as cover the longest list; the SIMT kernel's splits are whole tiles
  // of four pages.
  l.per_split = (max_pages + l.splits - 1) / l.splits;
  if (resident == 0) l.per_split = (l.per_split + 3) / 4 * 4;
  l.splits = (max_pages + l.per_split - 1) / l.per_split;
  // Whole pairs are the tensor-core kernel's (the SIMT one splits every pair alike; with
  // one split every pair is whole), and ZC_DECODE_MERGE=always merges every pair.
  l.whole = resident == 0 || merge_always() ? 0 : l.splits == 1 ? pairs : use.whole_pairs;
  return l;
}

}  // namespace

bool use_tensor_cores() { return !simt_forced(); }

int splits_for_slots(int pairs, int max_pages, int slots, bool tensor_cores) {
  pairs = std::max(1, pairs);
  slots = std::max(1, slots);
  const int by_work = std::max(1, (max_pages + 7) / 8);
  // SIMT: at least one wave.
  if (!tensor_cores) return std::clamp((slots + pairs - 1) / pairs, 1, by_work);
  // Tensor cores, the pairs within one wave: the splits that fit it.
  if (pairs <= slots) return std::clamp(slots / pairs, 1, by_work);
  // More pairs than slots: the cost model of waves_cost, over 1-4 splits. One split
  // leaves a last wave of 116 of 396 CTAs at batch 64 x 4096 (512 pairs): two split
  // ones fill 2.6 waves and measured 4-13% faster; from ~2.6 waves on the fixed starts
  // outweigh the tail (docs/benchmarks.md, session 15).
  int best = 1;
  double best_cost = 0.0;
  for (int s = 1; s <= std::min(4, by_work); ++s) {
    const double cost = waves_cost(int64_t(pairs) * s, (max_pages + s - 1) / s, slots) + (s > 1 ? kMergePages : 0.0);
    if (s == 1 || cost < best_cost) best = s, best_cost = cost;
  }
  return best;
}

SplitPlan plan_for_slots(int pairs, int max_pages, int slots, bool tensor_cores, bool tail) {
  pairs = std::max(1, pairs);
  slots = std::max(1, slots);
  const int uniform = splits_for_slots(pairs, max_pages, slots, tensor_cores);
  SplitPlan plan{uniform, tensor_cores && uniform == 1 ? pairs : 0};
  // Between one and two waves of pairs only: a wave of whole pairs, and the `left`
  // ones split S ways (at least 8 pages a split, at most 16 splits) into as many short
  // waves as their CTAs take, where the cost model (waves_cost) says that beats the
  // uniform choice. Batch 56 x 4096 on an H100 (448 pairs, 396
  // slots): uniform two splits 351 / 103 / 201 us (fp16 / ZipCache / KIVI-2), a wave
  // of whole pairs and 52 split 7 ways 321 / 91 / 170; batch 64: 371 / 111 / 215
  // against 365 / 101 / 195. Past two waves the scheduling of many CTAs of an
  // issue-bound kernel evens the last wave out by itself and the model overrates the
  // tail: ZipCache at 128 x 4096 took 188 us with a tail split 3 ways against 179.5
  // with one split, at 574 sequences 724 against 713, at 597 (a 13th wave of 24 pairs)
  // 754 against 748; fp16 gained 1.2% at 117 sequences (docs/benchmarks.md, session 16).
  const int whole_waves = pairs / slots, left = pairs % slots;
  if (!tensor_cores || !tail || whole_waves != 1 || left == 0) return plan;
  double best_cost = waves_cost(int64_t(pairs) * uniform, (max_pages + uniform - 1) / uniform, slots) +
                     (uniform > 1 ? kMergePages : 0.0);
  const int by_work = std::max(1, (max_pages + 7) / 8);
  for (int s = 2; s <= std::min(16, by_work); ++s) {
    const double cost = waves_cost(pairs - left, max_pages, slots) +
                        waves_cost(int64_t(left) * s, (max_pages + s - 1) / s, slots) + kMergePages;
    if (cost < best_cost) best_cost = cost, plan = SplitPlan{s, pairs - left};
  }
  return plan;
}

int decode_attention(const DecodeShape& shape, const PagedKvView& kv, const float* q, float* out,
                     DecodeWorkspace& ws, int splits, cudaStream_t stream, float* out_ml, uint16_t* out_bf16,
                     const WindowSums* window) {
  if (splits < 0) fail("cuda decode attention: splits {}", splits);
  // splits 0: the auto plan; a given number splits every pair alike.
  return decode_attention(shape, kv, q, out, ws, SplitPlan{splits, 0}, stream, out_ml, out_bf16, window);
}

int decode_attention(const DecodeShape& shape, const PagedKvView& kv, const float* q, float* out,
                     DecodeWorkspace& ws, const SplitPlan& plan, cudaStream_t stream, float* out_ml,
                     uint16_t* out_bf16, const WindowSums* window) {
  const int d = shape.head_dim;
  if (q == nullptr || (out == nullptr && out_bf16 == nullptr)) fail("cuda decode attention: null q or output");
  if (shape.batch < 1 || shape.n_kv_heads < 1 || shape.n_heads < 1 ||
      shape.n_heads % shape.n_kv_heads != 0) {
    fail("cuda decode attention: bad shape (batch {}, {} heads, {} KV heads)", shape.batch,
         shape.n_heads, shape.n_kv_heads);
  }
  if (window != nullptr &&
      (window->first_page == nullptr || window->count == nullptr || window->sums == nullptr ||
       window->scores == nullptr || window->ml == nullptr || window->arrivals == nullptr ||
       window->cap < 1 || window->first_page_stride < 1)) {
    fail("cuda decode attention: incomplete window tracking (a null buffer, or capacity {})", window->cap);
  }
  const int g = shape.n_heads / shape.n_kv_heads;
  if (g > 8) fail("cuda decode attention: GQA group of {} query heads (at most 8)", g);
  if (d != kv.head_dim) fail("cuda decode attention: head_dim {} but the pages hold {}", d, kv.head_dim);
  const int pairs = shape.batch * shape.n_kv_heads;
  if (pairs > 65535) fail("cuda decode attention: batch {} x {} KV heads exceeds the grid", shape.batch, shape.n_kv_heads);
  if (kv.lists != pairs) {
    fail("cuda decode attention: {} page lists for batch {} x {} KV heads", kv.lists, shape.batch,
         shape.n_kv_heads);
  }
  if (kv.min_pages < 1) fail("cuda decode attention: a (sequence, KV head) has no tokens");
  if (plan.splits < 0 || plan.whole_pairs < 0 || plan.whole_pairs > pairs) {
    fail("cuda decode attention: plan of {} splits with {} whole pairs for {} pairs", plan.splits, plan.whole_pairs,
         pairs);
  }
  detail::DecodeParams p = kernel_config(shape, kv);
  const Launch launch = resolve_launch(p, pairs, kv.max_pages, plan);
  const int splits = launch.splits, per_split = launch.per_split, whole = launch.whole;

  const size_t split_pairs = size_t(pairs - whole);
  ws.part_o.resize(std::max(ws.part_o.size(), split_pairs * size_t(splits) * size_t(g) * size_t(d)));
  ws.part_ml.resize(std::max(ws.part_ml.size(), split_pairs * size_t(splits) * size_t(g) * 2));

  p.pool = kv.pool;
  p.pages = kv.pages;
  p.starts = kv.starts;
  p.ends = kv.ends;
  p.out_ml = out_ml;
  p.q = q;
  p.out = out;
  p.out_bf16 = out_bf16;
  p.part_o = ws.part_o.get();
  p.part_ml = ws.part_ml.get();
  p.q_stride = shape.q_stride > 0 ? shape.q_stride : shape.n_heads * d;
  if (p.q_stride < shape.n_heads * d) fail("cuda decode attention: q stride {} below {} query values", p.q_stride, shape.n_heads * d);
  p.splits = splits;
  p.pages_per_split = per_split;
  p.whole_pairs = whole;
  const float scale = shape.scale > 0.0f ? shape.scale : 1.0f / std::sqrt(static_cast<float>(d));
  p.scale_log2 = scale * 1.4426950408889634f;
  if (window != nullptr) {
    p.window = *window;
    p.win_stride = window_scores_stride(window->cap);
  }
  check(detail::launch_decode(p, pairs, stream), "decode attention kernels");
  return splits;
}

long long decode_launch_key(const DecodeShape& shape, const PagedKvView& kv) {
  const int pairs = shape.batch * shape.n_kv_heads;
  const Launch l = resolve_launch(kernel_config(shape, kv), pairs, std::max(1, kv.max_pages), SplitPlan{0, 0});
  // Whole pairs read their own page counts from the device (PagedKvView::ends): with
  // every pair whole nothing launched depends on the longest list.
  if (l.whole == pairs) return -1;
  return (static_cast<long long>(l.splits) << 48) | (static_cast<long long>(l.per_split) << 20) | l.whole;
}

}  // namespace zc::cuda
