// One decode step of attention for one layer: 32 query heads, 8 KV heads, d = 128
// (a Llama-3-8B layer), at contexts 1024 and 4096, per method.
//
// BM_DecodeAttention/<method>/<ctx>: kv::decode_attention over the row sources a
// policy's storage yields at exactly <ctx> tokens (layouts in decode_layout.h). This
// is the per-step cost that decode pays, without the cache's amortized bookkeeping.
// threads:1 runs on one thread (its CPU time is robust on a shared machine);
// threads:2 uses the pool of one thread per core, as the engine does. Times are wall
// clock (UseRealTime), since the work is spread over threads.
// Bytes processed: every stored byte the step reads (codes, fp16 parameters, channel
// scales, fp16 rows), so GB/s is the cache bandwidth the kernel reaches.
//
// BM_DecodeAttentionSmall/<method>/<ctx>: the same with 8 query heads and 2 KV heads
// (a small model) at 16, 128 and 1088 tokens, where thread overhead shows.
//
// BM_CacheAppend/<method>/1024: the real kv::Cache (make_cache with the method's
// defaults), prefilled with 1024 - 64 random tokens outside the timing, then 64 timed
// append() calls (context 960 .. 1024): includes each policy's own work per step
// (KIVI's and ZipCache's chunk quantization, H2O's eviction), amortized.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "decode_layout.h"
#include "kv/attention.h"
#include "kv/cache.h"
#include "kv/method.h"

namespace {

using zc_bench::kDim;
using zc_bench::kHeads;
using zc_bench::kKvHeads;

std::vector<float> random_vector(size_t n, uint64_t seed, float sd) {
  zc::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& e : v) e = rng.normal(0.0f, sd);
  return v;
}

void decode_attention(benchmark::State& state, const std::string& method, int ctx, int threads,
                      int n_heads, int n_kv_heads) {
  zc::ThreadPool::set_default_threads(threads);
  zc_bench::Layout layout = zc_bench::make_layout(method, ctx, n_heads, n_kv_heads);
  const auto q = random_vector(size_t(n_heads) * kDim, 11, 1.0f);
  std::vector<float> out(q.size());
  const zc::kv::SourceFn sources = layout.sources();
  for (auto _ : state) {
    zc::kv::decode_attention(layout.shape, q.data(), ctx - 1, sources, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(layout.bytes));
  state.counters["cache_bytes"] = double(layout.bytes);
  zc::ThreadPool::set_default_threads(0);  // back to one thread per core
}

void cache_append(benchmark::State& state, const std::string& method, int ctx) {
  constexpr int kSteps = 64;
  const int prompt = ctx - kSteps;
  zc::kv::KvShape shape;
  shape.n_heads = kHeads, shape.n_kv_heads = kKvHeads, shape.head_dim = kDim;
  const size_t qsz = size_t(kHeads) * kDim, kvsz = size_t(kKvHeads) * kDim;
  const auto q = random_vector(size_t(ctx) * qsz, 21, 1.0f);
  const auto k = random_vector(size_t(ctx) * kvsz, 22, 1.0f);
  const auto v = random_vector(size_t(ctx) * kvsz, 23, 1.0f);
  auto cache = zc::kv::make_cache(zc::kv::parse_method(method), shape);
  std::vector<float> out(size_t(prompt) * qsz);
  cache->prefill(q.data(), k.data(), v.data(), prompt, out.data());
  int t = prompt;
  for (auto _ : state) {
    cache->append(&q[size_t(t) * qsz], &k[size_t(t) * kvsz], &v[size_t(t) * kvsz], out.data());
    benchmark::DoNotOptimize(out.data());
    ++t;
  }
  state.counters["cache_bytes"] = double(cache->memory().total());
}

const bool registered = [] {
  for (const char* m : {"fp16", "kivi2", "zipcache", "mikv", "h2o"}) {
    for (int ctx : {1024, 4096}) {
      for (int threads : {1, 2}) {
        const std::string name = "BM_DecodeAttention/" + std::string(m) + "/" +
                                 std::to_string(ctx) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), decode_attention, std::string(m), ctx, threads,
                                     kHeads, kKvHeads)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
    }
    // A small model's layer (8 query heads, 2 KV heads): little work per step, where
    // handing it to threads must not cost more than it saves.
    for (int ctx : {16, 128, 1088}) {
      for (int threads : {1, 2}) {
        const std::string name = "BM_DecodeAttentionSmall/" + std::string(m) + "/" +
                                 std::to_string(ctx) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), decode_attention, std::string(m), ctx, threads,
                                     8, 2)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
    }
    benchmark::RegisterBenchmark(("BM_CacheAppend/" + std::string(m) + "/1024").c_str(),
                                 cache_append, std::string(m), 1024)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime()
        ->Iterations(64);
  }
  return true;
}();

}  // namespace
