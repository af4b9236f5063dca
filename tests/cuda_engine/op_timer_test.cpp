// The op profiler on a GPU (skipped without one): OpTimer around a known kernel
// sequence (memsets of very different sizes), its rules (no nesting, no graph capture,
// disabled = no events, pooled events), and GpuRunner's instrumentation on golden
// models: the operation names and call counts of one prefill and a few decode steps
// follow from the model's config, and timing changes no result. No speed is tested.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/gpu_test.h"
#include "../model/testdata.h"
#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/engine/gpu_model.h"
#include "cuda/engine/gpu_runner.h"
#include "cuda/engine/op_timer.h"
#include "kv/method.h"
#include "model/forward.h"

namespace mt = zc::model::test;
using zc::cuda::DeviceBuffer;
using zc::cuda::OpReport;
using zc::cuda::OpTimer;

namespace {

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { zc::cuda::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream"); }
  ~Stream() { cudaStreamDestroy(s); }
};

TEST(OpTimer, TimesNamedMemsetsAndReusesItsEvents) {
  ZC_REQUIRE_GPU();
  Stream st;
  DeviceBuffer<uint8_t> big(size_t(256) << 20), small(size_t(1) << 20);
  OpTimer timer;
  const auto round = [&] {
    for (int i = 0; i < 2; ++i) {
      timer.begin("memset 256 MiB", st.s);
      zc::cuda::check(cudaMemsetAsync(big.get(), i, big.bytes(), st.s), "memset");
      timer.end(st.s);
      for (int j = 0; j < (i == 0 ? 1 : 2); ++j) {  // 3 small ones in all, interleaved
        timer.begin("memset 1 MiB", st.s);
        zc::cuda::check(cudaMemsetAsync(small.get(), j, small.bytes(), st.s), "memset");
        timer.end(st.s);
      }
    }
  };
  round();
  EXPECT_EQ(timer.pending(), 5);
  timer.collect();
  EXPECT_EQ(timer.pending(), 0);
  EXPECT_EQ(timer.events_created(), 10);
  round();  // the same five operations again: no new events
  const OpReport r = timer.report();
  EXPECT_EQ(timer.events_created(), 10);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].name, "memset 256 MiB") << "256x the bytes takes longer";
  EXPECT_EQ(r.ops[0].calls, 4);
  EXPECT_EQ(r.ops[1].name, "memset 1 MiB");
  EXPECT_EQ(r.ops[1].calls, 6);
  EXPECT_GT(r.ops[1].total_ms, 0.0);
  EXPECT_GT(r.ops[0].total_ms, r.ops[1].total_ms);
  EXPECT_EQ(r.regions, 2);
  // One stream: the operations run one after another inside the regions' spans
  // (events resolve to about half a microsecond).
  EXPECT_GE(r.wall_ms, r.timed_ms() - 1e-2);
  std::printf("%s", zc::cuda::format_op_table(r).c_str());
  timer.clear();
  EXPECT_TRUE(timer.report().empty());
  timer.reserve(8);  // 16 events, 10 of them already in the pool
  EXPECT_EQ(timer.events_created(), 16);
}

TEST(OpTimer, DisabledRecordsNothing) {
  ZC_REQUIRE_GPU();
  Stream st;
  OpTimer timer(false);
  timer.reserve(100);
  timer.begin("x", st.s);
  timer.end(st.s);
  timer.end(st.s);  // not even the pairing is checked: nothing happens at all
  EXPECT_TRUE(timer.report().empty());
  EXPECT_EQ(timer.events_created(), 0);
  int ran = 0;
  zc::cuda::timed_op(&timer, "x", st.s, [&] { ++ran; });
  zc::cuda::timed_op(nullptr, "x", st.s, [&] { ++ran; });
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(timer.events_created(), 0);
}

TEST(OpTimer, MisuseIsAClearError) {
  ZC_REQUIRE_GPU();
  Stream st;
  OpTimer timer;
  EXPECT_THROW(timer.end(st.s), zc::Error);  // nothing open
  timer.begin("outer", st.s);
  try {
    timer.begin("inner", st.s);
    ADD_FAILURE() << "nested operations were accepted";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'outer'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(timer.collect(), zc::Error);  // "outer" still open
  timer.abandon();
  EXPECT_EQ(timer.pending(), 0);
  EXPECT_THROW(timer.begin("", st.s), zc::Error);
  // An exception inside timed_op drops the operation and leaves the timer usable.
  EXPECT_THROW(zc::cuda::timed_op(&timer, "throws", st.s, [] { throw std::runtime_error("boom"); }),
               std::runtime_error);
  zc::cuda::timed_op(&timer, "after", st.s, [] {});
  const OpReport r = timer.report();
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].name, "after");
  // Inside graph capture: refused (events there would time the capture, not the work).
  zc::cuda::check(cudaStreamBeginCapture(st.s, cudaStreamCaptureModeThreadLocal), "capture");
  bool refused = false;
  try {
    timer.begin("captured", st.s);
  } catch (const zc::Error& e) {
    refused = std::string(e.what()).find("captured into a CUDA graph") != std::string::npos;
  }
  cudaGraph_t graph = nullptr;
  zc::cuda::check(cudaStreamEndCapture(st.s, &graph), "end capture");
  if (graph) cudaGraphDestroy(graph);
  EXPECT_TRUE(refused);
  EXPECT_EQ(timer.pending(), 0);
}

// Whether the runner fuses gate/up and SwiGLU for `rows` rows (gemm.h): products of up
// to ZC_GEMV rows (default 8) with inputs in multiples of 8, and no MLP biases.
bool fuses_swiglu(const zc::model::ModelConfig& c, int rows) {
  const char* v = std::getenv("ZC_GEMV");
  const int skinny = v == nullptr || *v == '\0' ? 8 : std::atoi(v);
  return rows <= skinny && c.hidden_size % 8 == 0 && !c.mlp_bias;
}

// Calls per operation name of one pass over `rows` rows of a model with config c:
// what gpu_runner.cpp launches, counted from the config here.
std::map<std::string, long long> expected_calls(const zc::model::ModelConfig& c, bool prefill, int passes,
                                                int rows) {
  const long long L = c.n_layers, P = passes;
  std::map<std::string, long long> m = {
      {"upload ids", P}, {"embed", P}, {"rmsnorm", (2 * L + 1) * P}, {"gemm qkv", L * P},
      {"gemm o", L * P}, {"gemm down", L * P}, {"lm head", P}};
  if (fuses_swiglu(c, rows)) {
    m["gemm gate/up+silu"] = L * P;
  } else {
    m["gemm gate/up"] = m["silu*mul"] = L * P;
  }
  const long long bias = L * ((c.qkv_bias ? 1 : 0) + (c.o_bias ? 1 : 0) + (c.mlp_bias ? 2 : 0));
  if (bias > 0) m["bias"] = bias * P;
  if (c.qk_norm) m["qk norm"] = L * P;
  if (prefill) {
    m["rope + split qkv"] = m["attention prefill"] = m["cache prefill"] = L * P;
  } else {
    m["cache step"] = P;
    m["cache append"] = m["attention decode"] = L * P;
  }
  return m;
}

void expect_calls(const OpReport& r, const std::map<std::string, long long>& want) {
  std::map<std::string, long long> got;
  for (const auto& op : r.ops) {
    got[op.name] = op.calls;
    EXPECT_GE(op.total_ms, 0.0) << op.name;
  }
  EXPECT_EQ(got, want);
  EXPECT_GT(r.timed_ms(), 0.0);
}

TEST(OpTimer, RunnerTimesEveryOperationAndChangesNoResult) {
  ZC_REQUIRE_GPU();
  zc::cuda::KvPool pool(size_t(256) << 20);
  // llama3: plain; qwen2: q/k/v biases; qwen3: q/k norms.
  for (const std::string name : {"llama3-tiny", "qwen2-tiny", "qwen3-tiny"}) {
    const auto model = zc::model::Model::load(mt::models_dir() + "/" + name);
    const auto gpu = zc::cuda::GpuModel::upload(model.config(), model.weights());
    const int V = model.config().vocab_size;
    const std::vector<int32_t> prompt = mt::golden_cases(name).back().prompt;
    for (const char* method : {"fp16", "zipcache"}) {
      SCOPED_TRACE(name + " " + method);
      const auto m = zc::kv::parse_method(method);
      zc::cuda::GpuRunner plain(gpu, m, pool, 2, 512), timed(gpu, m, pool, 2, 512);
      OpTimer timer;
      timed.set_op_timer(&timer);
      for (int s = 0; s < 2; ++s) {
        plain.prefill(s, prompt);
        timed.prefill(s, prompt);
      }
      expect_calls(timer.report(), expected_calls(model.config(), true, 2, int(prompt.size())));
      for (int s = 0; s < 2; ++s) {
        const auto a = plain.logits_host(s), b = timed.logits_host(s);
        EXPECT_LT(mt::rel_l2(b.data(), a.data(), size_t(V)), 1e-6) << "prefill of sequence " << s;
      }
      timer.clear();
      const int steps = 5;
      for (int step = 0; step < steps; ++step) {
        const std::vector<int32_t> t{int32_t((step * 31 + 5) % V), int32_t((step * 17 + 3) % V)};
        plain.decode(t);
        timed.decode(t);
        timer.collect();
      }
      const OpReport dec = timer.report();
      expect_calls(dec, expected_calls(model.config(), false, steps, 2));
      EXPECT_EQ(dec.regions, steps);
      EXPECT_EQ(timed.graph_captures(), 0) << "a timer forces the eager path";
      EXPECT_GE(plain.graph_captures(), 1);
      for (int s = 0; s < 2; ++s) {
        const auto a = plain.logits_host(s), b = timed.logits_host(s);
        EXPECT_LT(mt::rel_l2(b.data(), a.data(), size_t(V)), 1e-6) << "decode of sequence " << s;
      }
      // Without the timer the runner captures and replays graphs again.
      timed.set_op_timer(nullptr);
      for (int step = 0; step < 3; ++step) timed.decode(std::vector<int32_t>{1, 2});
      EXPECT_GE(timed.graph_captures(), 1);
      EXPECT_EQ(timer.pending(), 0);
    }
  }
}

}  // namespace
