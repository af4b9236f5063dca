// Decode-attention bandwidth on the GPU (docs/benchmarks.md, GPU section): one decode
// step's attention kernel (split + merge) for batch 8 (--batch), 32 query heads / 8 KV heads,
// d = 128, at several contexts, for an fp16 cache, ZipCache (ratio 0.4, 4/2 bits,
// CSTQ values, 64-token fp16 window) and KIVI-2 (32-token blocks, residual 128).
// Reports the median of cudaEvent-timed repetitions (each call between its own two
// events: one call's latency, launches included), the same per call of back-to-back runs
// of kStreamRun calls (stream_us: the time a call takes inside a stream of kernels, as
// in a decode step's CUDA graph), the bytes the step must read
// (every page's codes, parameters and descriptors, plus q), the achieved GB/s, and in
// the same run the device-to-device copy bandwidth (bytes read + written), so the
// ratio between the two is a same-run figure. Inputs rotate over enough copies of the
// cache to exceed the L2 several times.
//
// zc_gpu_bench [--contexts 4096,8192,16384] [--methods fp16,zipcache,kivi2] [--reps 100]
//              [--batch 8] [--splits N] [--json FILE]
// --batch 256 fills every SM with several full waves of CTAs: the throughput regime of
// the largest batch that fits a memory budget (batch 8 is the latency regime).
// The splits column is the split pairs' count: between one and two waves of pairs the
// automatic plan runs a wave of whole pairs (one CTA each) before them (SplitPlan;
// ZC_DECODE_TAIL=0 splits every pair alike, for A/B runs).
// --splits forces the context splits per (sequence, KV head) (0: decode_attention's
// automatic choice). A build with -DZC_DECODE_TRACE=ON also prints, for one call of each
// case, the medians of the tensor-core kernel's per-warp phases (decode_trace.cuh).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "cuda/core/device.h"
#include "cuda/kv/decode_attention.h"
#include "cuda/kv/decode_trace.cuh"
#include "cuda/kv/kv_pages.h"
#include "quant/quantizer.h"

namespace {

using zc::cuda::check;

constexpr int kHeads = 32, kKvHeads = 8, kDim = 128;

struct Result {
  std::string method;
  int context = 0, splits = 0, sets = 0;
  double ms = 0, stream_ms = 0, bytes = 0, gbps = 0, ratio = 0;
};

// Calls per event pair of the stream_us figure.
constexpr int kStreamRun = 10;

void random_rows(zc::Rng& rng, int n, std::vector<float>& k, std::vector<float>& v) {
  k.resize(size_t(n) * kDim);
  v.resize(size_t(n) * kDim);
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = rng.normal() * ((i % kDim) % 11 == 3 ? 4.0f : 1.0f);
    v[i] = rng.normal();
  }
}

void add_fp16(zc::cuda::PagedKvBuilder& b, zc::Rng& rng, int n) {
  std::vector<float> k, v;
  random_rows(rng, n, k, v);
  std::vector<uint16_t> kh(k.size()), vh(v.size());
  for (size_t i = 0; i < k.size(); ++i) kh[i] = zc::float_to_half(k[i]), vh[i] = zc::float_to_half(v[i]);
  b.add_fp16(kh.data(), vh.data(), kDim, n);
}

void add_block(zc::cuda::PagedKvBuilder& b, zc::Rng& rng, int n, int bits, zc::quant::Scheme vs,
               int group) {
  std::vector<float> k, v;
  random_rows(rng, n, k, v);
  b.add_block(zc::quant::quantize(k.data(), n, kDim, bits, zc::quant::Scheme::Channelwise),
              zc::quant::quantize(v.data(), n, kDim, bits, vs, group));
}

// One (sequence, KV head) list of `method` at context L, replicated to every pair.
zc::cuda::PagedKvBuilder build(const std::string& method, int L, int batch, zc::Rng& rng) {
  zc::cuda::PagedKvBuilder b(kDim);
  b.begin_list();
  if (method == "fp16") {
    add_fp16(b, rng, L);
  } else if (method == "zipcache") {
    const int window = 64, quant = L - window, salient = int(std::lround(0.4 * quant));
    add_block(b, rng, salient, 4, zc::quant::Scheme::Cstq, 0);
    add_block(b, rng, quant - salient, 2, zc::quant::Scheme::Cstq, 0);
    add_fp16(b, rng, window);
  } else {  // kivi2: the window holds R..R+G-1 tokens (SPEC.md section 2)
    const int window = 128 + (L - 128) % 32;
    for (int i = 0; i < (L - window) / 32; ++i) add_block(b, rng, 32, 2, zc::quant::Scheme::Groupwise, 32);
    add_fp16(b, rng, window);
  }
  b.replicate(batch * kKvHeads);
  return b;
}

// Median of `reps` event-timed runs of body(r), queued back to back (one sync at the
// end) so that host launch overhead does not leak into the device times.
template <typename F>
double median_ms(int reps, F&& body) {
  std::vector<cudaEvent_t> ev(2 * size_t(reps));
  for (auto& e : ev) check(cudaEventCreate(&e), "event");
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(ev[2 * size_t(r)]), "record");
    body(r);
    check(cudaEventRecord(ev[2 * size_t(r) + 1]), "record");
  }
  check(cudaEventSynchronize(ev.back()), "sync");
  std::vector<float> t(static_cast<size_t>(reps));
  for (int r = 0; r < reps; ++r) {
    check(cudaEventElapsedTime(&t[size_t(r)], ev[2 * size_t(r)], ev[2 * size_t(r) + 1]), "elapsed");
  }
  for (auto& e : ev) cudaEventDestroy(e);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double copy_bandwidth_gbps(int reps) {
  const size_t bytes = size_t(1) << 30;
  zc::cuda::DeviceBuffer<uint8_t> src(bytes), dst(bytes);
  src.fill_bytes(1);
  for (int i = 0; i < 3; ++i) check(cudaMemcpy(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice), "copy");
  const double ms = median_ms(reps, [&](int) {
    check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice), "copy");
  });
  return 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
}

#ifdef ZC_DECODE_TRACE
// The per-warp phases of the launch just traced (decode_trace.cuh), as medians and
// 90th percentiles over the warps, in ns (clock64 deltas at the clock the warps ran at).
void print_trace(const std::string& method, int context) {
  using namespace zc::cuda;  // the DecodeTraceSlot names
  using Record = const unsigned long long*;
  const std::vector<unsigned long long> t = decode_trace_download();
  std::vector<Record> w;
  for (size_t i = 0; i + kTraceSlots <= t.size(); i += kTraceSlots) {
    if (t[i + kTraceEntryNs] != 0 && t[i + kTraceEndNs] != 0) w.push_back(&t[i]);
  }
  if (w.empty()) return;
  unsigned long long first = ~0ull, last = 0;
  std::vector<double> ghz, pages;
  for (Record r : w) {
    first = std::min(first, r[kTraceEntryNs]), last = std::max(last, r[kTraceEndNs]);
    if (r[kTraceEndNs] > r[kTraceEntryNs]) {
      ghz.push_back(double(r[kTraceEnd] - r[kTraceEntry]) / double(r[kTraceEndNs] - r[kTraceEntryNs]));
    }
    pages.push_back(double(r[kTracePages]));
  }
  auto pct = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
  };
  const double clk = pct(ghz, 0.5);
  std::printf("trace %s %d: %zu warps, %.0f pages per warp (max %.0f), %.2f GHz; kernel span %.2f us\n", method.c_str(),
              context, w.size(), pct(pages, 0.5), pct(pages, 1.0), clk, double(last - first) / 1e3);
  auto row = [&](const char* name, auto f) {
    std::vector<double> v;
    for (Record r : w) v.push_back(f(r));
    std::printf("  %-28s median %8.0f ns, p90 %8.0f, max %8.0f\n", name, pct(v, 0.5), pct(v, 0.9), pct(v, 1.0));
  };
  // Clock cycles from slot a to slot b in ns (0 when b was not reached: a warp without pages).
  auto span = [&](Record r, int a, int b) { return r[b] ? double(r[b] - r[a]) / clk : 0.0; };
  row("start after the first warp", [&](Record r) { return double(r[kTraceEntryNs] - first); });
  row("prologue (q, descriptors)", [&](Record r) { return span(r, kTraceEntry, kTracePrologue); });
  row("page 0 landed", [&](Record r) { return span(r, kTracePrologue, kTracePage0Landed); });
  row("page 0 fold", [&](Record r) { return span(r, kTracePage0Landed, kTracePage0Folded); });
  row("page 0 math", [&](Record r) { return span(r, kTracePage0Folded, kTracePage0Done); });
  row("pages 1.. (per page)", [&](Record r) {
    return r[kTracePage0Done] && r[kTracePages] > 1 ? span(r, kTracePage0Done, kTraceLoopDone) / double(r[kTracePages] - 1)
                                                    : 0.0;
  });
  row("wait for the CTA's warps", [&](Record r) { return span(r, kTraceLoopDone, kTraceBarrier); });
  row("finish", [&](Record r) { return span(r, kTraceBarrier, kTraceEnd); });
  row("warp total", [&](Record r) { return double(r[kTraceEndNs] - r[kTraceEntryNs]); });
  row("end after the first start", [&](Record r) { return double(r[kTraceEndNs] - first); });
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> contexts = {4096, 8192, 16384};
  std::vector<std::string> methods = {"fp16", "zipcache", "kivi2"};
  int reps = 100, batch = 8, force_splits = 0;
  std::string json;
  auto split = [](const std::string& list, char sep) {
    std::vector<std::string> out;
    for (std::string s = list; !s.empty();) {
      const size_t at = s.find(sep);
      out.push_back(s.substr(0, at));
      s = at == std::string::npos ? "" : s.substr(at + 1);
    }
    return out;
  };
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--reps") {
      reps = std::max(1, std::atoi(argv[i + 1]));
    } else if (a == "--batch") {
      batch = std::clamp(std::atoi(argv[i + 1]), 1, 4096);
    } else if (a == "--json") {
      json = argv[i + 1];
    } else if (a == "--contexts") {
      contexts.clear();
      for (const std::string& c : split(argv[i + 1], ',')) contexts.push_back(std::atoi(c.c_str()));
    } else if (a == "--methods") {
      methods = split(argv[i + 1], ',');
    } else if (a == "--splits") {
      force_splits = std::clamp(std::atoi(argv[i + 1]), 0, 4096);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::string why;
  if (!zc::cuda::device_available(&why)) {
    std::fprintf(stderr, "zc_gpu_bench: no CUDA GPU: %s\n", why.c_str());
    return 1;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  const double copy_gbps = copy_bandwidth_gbps(20);
  std::printf("GPU: %s, %d SMs, L2 %d MB; device copy bandwidth %.0f GB/s (read + write)\n",
              prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbps);

  zc::Rng rng(1);
  std::vector<Result> results;
  zc::cuda::DecodeShape shape;
  shape.batch = batch, shape.n_heads = kHeads, shape.n_kv_heads = kKvHeads, shape.head_dim = kDim;
  std::vector<float> q(size_t(batch) * kHeads * kDim);
  for (float& x : q) x = rng.normal();
  zc::cuda::DeviceBuffer<float> dq, dout(q.size());
  dq.upload(q);
  for (int L : contexts) {
    for (const std::string& method : methods) {
      const zc::cuda::PagedKvBuilder b = build(method, L, batch, rng);
      // Enough copies that the rotation reads at least 4x the L2 between reuses.
      const double one = double(b.pool().size());
      const int sets = std::clamp(int(std::ceil(4.0 * prop.l2CacheSize / one)), 1, 8);
      std::vector<zc::cuda::DevicePagedKv> kv;
      for (int s = 0; s < sets; ++s) kv.push_back(zc::cuda::upload(b));
      zc::cuda::DecodeWorkspace ws;
      {
        int splits = 0;
        for (int w = 0; w < 5; ++w) {
          splits = zc::cuda::decode_attention(shape, kv[size_t(w % sets)], dq.get(), dout.get(), ws, force_splits);
        }
        const double ms = median_ms(reps, [&](int r) {
          (void)zc::cuda::decode_attention(shape, kv[size_t(r % sets)], dq.get(), dout.get(), ws, force_splits);
        });
        // As many runs as reps / 3 (at least 20): a median of a few runs of 10 calls
        // once landed on a slow stretch of the card (one H100 run, 2.4x the rest).
        const double run_ms = median_ms(std::max(20, reps / 3), [&](int r) {
          for (int i = 0; i < kStreamRun; ++i) {
            (void)zc::cuda::decode_attention(shape, kv[size_t(r * kStreamRun + i) % size_t(sets)], dq.get(), dout.get(), ws,
                                             force_splits);
          }
        });
        check(cudaDeviceSynchronize(), "bench");
#ifdef ZC_DECODE_TRACE
        for (int i = 0; i < 3; ++i) (void)zc::cuda::decode_attention(shape, kv[size_t(i) % size_t(sets)], dq.get(), dout.get(), ws, force_splits);
        zc::cuda::decode_trace_clear();
        (void)zc::cuda::decode_attention(shape, kv[size_t(3) % size_t(sets)], dq.get(), dout.get(), ws, force_splits);
        check(cudaDeviceSynchronize(), "trace");
        print_trace(method, L);
#endif
        Result res;
        res.stream_ms = run_ms / kStreamRun;
        res.method = method;
        res.context = L, res.splits = splits, res.sets = sets, res.ms = ms;
        res.bytes = double(kv[0].bytes() + q.size() * sizeof(float));
        res.gbps = res.bytes / (ms * 1e-3) / 1e9;
        res.ratio = double(size_t(batch) * kKvHeads * size_t(L) * kDim * 4) / double(kv[0].pool.bytes());
        results.push_back(res);
      }
    }
  }

  std::printf("\n%-9s %7s %7s %6s %10s %10s %9s %8s %7s %10s %8s\n", "method", "context", "ratio", "splits",
              "time_us", "MB_read", "GB/s", "%copy", "vs_fp16", "stream_us", "%copy_st");
  for (const Result& r : results) {
    double fp16_ms = r.ms;
    for (const Result& o : results) {
      if (o.method == "fp16" && o.context == r.context) fp16_ms = o.ms;
    }
    std::printf("%-9s %7d %7.2f %6d %10.1f %10.1f %9.0f %7.1f%% %6.2fx %10.1f %7.1f%%\n", r.method.c_str(),
                r.context, r.ratio, r.splits, r.ms * 1e3, r.bytes / 1e6, r.gbps, 100.0 * r.gbps / copy_gbps,
                fp16_ms / r.ms, r.stream_ms * 1e3, 100.0 * r.bytes / (r.stream_ms * 1e-3) / 1e9 / copy_gbps);
  }
  if (!json.empty()) {
    FILE* f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json.c_str());
      return 1;
    }
    std::fprintf(f, "{\"gpu\": \"%s\", \"copy_gbps\": %.1f, \"batch\": %d, \"heads\": %d, \"kv_heads\": %d, "
                 "\"head_dim\": %d, \"reps\": %d, \"results\": [\n", prop.name, copy_gbps, batch, kHeads,
                 kKvHeads, kDim, reps);
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::fprintf(f, "  {\"method\": \"%s\", \"context\": %d, \"ratio\": %.3f, \"splits\": %d, \"sets\": %d, "
                   "\"median_us\": %.2f, \"stream_us\": %.2f, \"bytes\": %.0f, \"gbps\": %.1f, \"pct_copy\": %.1f}%s\n",
                   r.method.c_str(), r.context, r.ratio, r.splits, r.sets, r.ms * 1e3, r.stream_ms * 1e3, r.bytes,
                   r.gbps, 100.0 * r.gbps / copy_gbps, i + 1 < results.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  return 0;
}
