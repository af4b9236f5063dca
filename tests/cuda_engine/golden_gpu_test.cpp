// The model on the GPU against the golden data (HF transformers fp32 logits and
// greedy continuations, ../shared/testdata/models): bf16 weights and fp32
// accumulation must stay within 1e-2 relative L2 of the fp32 logits (issue 4), and the
// greedy continuation must match HF's wherever HF's top-2 margin leaves room for that
// error. Also: the compressed GPU caches next to the CPU path with the same method.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../cuda/gpu_test.h"
#include "core/error.h"
#include "../model/testdata.h"
#include "cuda/engine/gpu_model.h"
#include "cuda/engine/gpu_runner.h"
#include "cuda/kv/decode_attention.h"
#include "kv/method.h"
#include "model/forward.h"

namespace mt = zc::model::test;
using zc::cuda::GpuModel;
using zc::cuda::GpuRunner;
using zc::cuda::KvPool;

namespace {

// A context the GPU runner accepts for every golden model (Mistral's window is 4096).
constexpr int kContext = 2048;

// A golden model on the CPU and its weights on the GPU.
struct Loaded {
  zc::model::Model model;
  GpuModel gpu;
};
Loaded load_on_gpu(const std::string& name) {
  auto model = zc::model::Model::load(mt::models_dir() + "/" + name);
  auto gpu = GpuModel::upload(model.config(), model.weights());
  return {std::move(model), std::move(gpu)};
}

TEST(CudaGolden, LogitsAndGreedyMatchTransformers) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(256) << 20);
  for (const std::string& name : mt::golden_models()) {
    SCOPED_TRACE(name);
    const auto [model, gpu] = load_on_gpu(name);
    const int V = model.config().vocab_size;
    for (const mt::GoldenCase& c : mt::golden_cases(name)) {
      GpuRunner runner(gpu, zc::kv::parse_method("fp16"), pool, 1, kContext);
      runner.prefill(0, c.prompt);
      const std::vector<float> logits = runner.logits_host(0);
      const double err = mt::rel_l2(logits.data(), c.last_logits.data(), size_t(V));
      EXPECT_LT(err, 1e-2) << "prompt of " << c.prompt.size() << " tokens";
      // Greedy: each token must match while HF's margin between its top two logits is
      // clearly above the bf16 error (measured here: |logits - golden| max).
      double max_abs = 0;
      for (int i = 0; i < V; ++i) max_abs = std::max(max_abs, std::fabs(double(logits[size_t(i)]) - c.last_logits[size_t(i)]));
      const double needed = 4.0 * max_abs;
      int compared = 0;
      std::vector<int32_t> tok = runner.greedy();
      for (size_t i = 0; i < c.greedy_ids.size(); ++i) {
        if (c.greedy_margin[i] < needed) break;  // a tie within the error: stop comparing
        ASSERT_EQ(tok[0], c.greedy_ids[i]) << "greedy token " << i << " (margin " << c.greedy_margin[i] << ")";
        ++compared;
        if (i + 1 == c.greedy_ids.size()) break;
        runner.decode(std::vector<int32_t>{tok[0]});
        tok = runner.greedy();
      }
      RecordProperty(name + "_greedy_compared", compared);
      std::printf("%s: prompt %zu tokens, rel L2 %.2e, greedy %d/%zu compared and equal\n", name.c_str(),
                  c.prompt.size(), err, compared, c.greedy_ids.size());
    }
  }
}

// A batch of sequences of different prompt lengths decoding together gives each
// sequence the logits it gets alone (batching must not mix sequences).
TEST(CudaGolden, BatchedSequencesMatchSingleRuns) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(256) << 20);
  const std::string name = "llama3-tiny";
  const auto [model, gpu] = load_on_gpu(name);
  const int V = model.config().vocab_size;
  const auto cases = mt::golden_cases(name);
  ASSERT_GE(cases.size(), 2u);
  // Sequence 2 repeats sequence 0's prompt, so that their compressions come in the
  // same step, one batched call (KIVI's first page compression: step 158 for sequences
  // 0 and 2, 152 for sequence 1; ZipCache's streaming chunk: step 100 for all three).
  constexpr int kSteps = 170;
  const std::vector<size_t> prompt_of{0, 1, 0};
  for (const char* method : {"fp16", "kivi2", "zipcache"}) {
    SCOPED_TRACE(method);
    const auto m = zc::kv::parse_method(method);
    GpuRunner batch(gpu, m, pool, 3, kContext);
    for (int b = 0; b < 3; ++b) batch.prefill(b, cases[prompt_of[size_t(b)]].prompt);
    std::vector<std::vector<float>> alone(2);
    for (int s = 0; s < 2; ++s) {
      GpuRunner one(gpu, m, pool, 1, kContext);
      one.prefill(0, cases[size_t(s)].prompt);
      for (int step = 0; step < kSteps; ++step) one.decode(std::vector<int32_t>{int32_t(7 + step)});
      alone[size_t(s)] = one.logits_host(0);
    }
    for (int step = 0; step < kSteps; ++step) {
      batch.decode(std::vector<int32_t>{int32_t(7 + step), int32_t(7 + step), int32_t(7 + step)});
    }
    for (int b = 0; b < 3; ++b) {
      const std::vector<float> got = batch.logits_host(b);
      EXPECT_LT(mt::rel_l2(got.data(), alone[prompt_of[size_t(b)]].data(), size_t(V)), 1e-5) << "sequence " << b;
    }
  }
}

// Compressed caches on the GPU next to the CPU path with the same method: the GPU's
// bf16 arithmetic moves a few codes across rounding boundaries, so the two differ, but
// by far less than the method differs from the fp16 cache.
TEST(CudaGolden, CompressedCachesFollowTheCpuPath) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(256) << 20);
  const std::string name = "llama3-tiny";
  const auto [model, gpu] = load_on_gpu(name);
  const int V = model.config().vocab_size;
  const mt::GoldenCase c = mt::golden_cases(name).back();
  // A prompt long enough for KIVI blocks and ZipCache sets, then 150 decode steps
  // (ZipCache streams one chunk at 100).
  std::vector<int32_t> prompt;
  while (prompt.size() < 300) prompt.insert(prompt.end(), c.prompt.begin(), c.prompt.end());
  prompt.resize(300);
  for (const char* method : {"kivi2", "zipcache"}) {
    SCOPED_TRACE(method);
    const auto m = zc::kv::parse_method(method);
    auto cpu_seq = model.new_sequence(m, kContext);
    auto cpu_ref = model.new_sequence(zc::kv::parse_method("fp16"), kContext);
    GpuRunner runner(gpu, m, pool, 1, kContext);
    runner.prefill(0, prompt);
    std::vector<float> cpu = model.forward(cpu_seq, prompt);
    std::vector<float> ref = model.forward(cpu_ref, prompt);
    double worst_gpu_cpu = 0, worst_cpu_fp16 = 0;
    for (int step = 0; step < 150; ++step) {
      const int32_t t = int32_t((step * 37 + 11) % V);
      runner.decode(std::vector<int32_t>{t});
      cpu = model.forward(cpu_seq, std::vector<int32_t>{t});
      ref = model.forward(cpu_ref, std::vector<int32_t>{t});
      const std::vector<float> gpu_logits = runner.logits_host(0);
      worst_gpu_cpu = std::max(worst_gpu_cpu, mt::rel_l2(gpu_logits.data(), cpu.data(), size_t(V)));
      worst_cpu_fp16 = std::max(worst_cpu_fp16, mt::rel_l2(cpu.data(), ref.data(), size_t(V)));
    }
    std::printf("%s: worst rel L2 GPU vs CPU %.3e; CPU %s vs CPU fp16 %.3e\n", method, worst_gpu_cpu, method,
                worst_cpu_fp16);
    // These tiny random-weight models amplify a 2-bit code moving by one level (the
    // method itself is 0.76-0.88 away from fp16 here); measured on an H100: kivi2 0.21,
    // zipcache 0.18 against 0.76 / 0.88. A wrong page, parameter or saliency split
    // lands as far from the CPU path as from fp16.
    EXPECT_LT(worst_gpu_cpu, 0.35 * worst_cpu_fp16);
    // The pool's chunks hold what the CPU cache holds plus the padding of partly
    // filled 32-token pages.
    const auto mem = runner.cache().memory(0);
    const auto cpu_mem = cpu_seq.memory();
    EXPECT_EQ(mem.tokens_seen, 450u);
    EXPECT_EQ(mem.fp16_bytes, cpu_mem.fp16_bytes);
    EXPECT_GT(mem.ratio(), 0.8 * cpu_mem.ratio());
    EXPECT_LE(mem.ratio(), cpu_mem.ratio() * 1.0001);
    std::printf("%s: compression GPU %.3f, CPU %.3f\n", method, mem.ratio(), cpu_mem.ratio());
  }
}

// Decode steps replayed from CUDA graphs compute what eagerly launched steps compute,
// across page boundaries (new splits of the pages: new graphs) and a ZipCache streaming chunk.
TEST(CudaGolden, GraphReplayEqualsEagerLaunches) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(256) << 20);
  const auto [model, gpu] = load_on_gpu("llama3-tiny");
  const int V = model.config().vocab_size;
  const auto prompt = mt::golden_cases("llama3-tiny").back().prompt;
  for (const char* method : {"fp16", "kivi2", "zipcache"}) {
    SCOPED_TRACE(method);
    const auto m = zc::kv::parse_method(method);
    GpuRunner graphs(gpu, m, pool, 1, kContext), eager(gpu, m, pool, 1, kContext);
    eager.set_cuda_graphs(false);
    graphs.prefill(0, prompt);
    eager.prefill(0, prompt);
    double worst = 0;
    for (int step = 0; step < 130; ++step) {
      const std::vector<int32_t> t{int32_t((step * 31 + 5) % V)};
      graphs.decode(t);
      eager.decode(t);
      const auto a = graphs.logits_host(0), b = eager.logits_host(0);
      worst = std::max(worst, mt::rel_l2(a.data(), b.data(), size_t(V)));
    }
    EXPECT_LT(worst, 1e-6);
    // A capture happens where decode attention's launch changes (decode_launch_key),
    // which with one sequence depends on the kernel: at least one graph replays.
    EXPECT_GE(graphs.graph_captures(), 1) << "graphs were captured and replayed";
    EXPECT_EQ(eager.graph_captures(), 0);
  }
}

// Sequences of a few pages run on the tensor-core kernel as whole pairs (one split:
// decode_launch_key), so one graph, captured once, replays while every list grows page
// by page, each at its own step, and must still compute what eager launches compute.
TEST(CudaGolden, OneGraphReplaysAcrossPageGrowth) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(256) << 20);
  const auto [model, gpu] = load_on_gpu("llama3-tiny");
  const int V = model.config().vocab_size;
  const std::vector<int> prompt_lengths{1, 31, 32, 45, 64, 97, 7};  // pages fill at different steps
  const int B = int(prompt_lengths.size());
  for (const char* method : {"fp16", "kivi2", "zipcache"}) {
    SCOPED_TRACE(method);
    const auto m = zc::kv::parse_method(method);
    GpuRunner graphs(gpu, m, pool, B, 256), eager(gpu, m, pool, B, 256);
    eager.set_cuda_graphs(false);
    for (int b = 0; b < B; ++b) {
      auto prompt = std::vector<int32_t>(size_t(prompt_lengths[size_t(b)]));
      for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7 + size_t(b) * 13 + 3) % size_t(V));
      graphs.prefill(b, prompt);
      eager.prefill(b, prompt);
    }
    double worst = 0;
    for (int step = 0; step < 100; ++step) {  // every list gains 3-4 pages
      auto t = std::vector<int32_t>(size_t(B));
      for (int b = 0; b < B; ++b) t[size_t(b)] = int32_t((step * 31 + b * 5 + 5) % V);
      graphs.decode(t);
      eager.decode(t);
      for (int b = 0; b < B; ++b) {
        const auto a = graphs.logits_host(b), e = eager.logits_host(b);
        worst = std::max(worst, mt::rel_l2(a.data(), e.data(), size_t(V)));
      }
    }
    EXPECT_LT(worst, 1e-6);
    // Every chunk goes back, the window pages end_step() made ahead for a next token
    // (three or four per sequence in these steps) included.
    for (int b = 0; b < B; ++b) graphs.cache().reset(b), eager.cache().reset(b);
    EXPECT_EQ(pool.used(), 0u);
    // ZC_DECODE_KERNEL=simt splits every pair, whose pages per split key the graphs.
    if (zc::cuda::use_tensor_cores()) {
      EXPECT_EQ(graphs.graph_captures(), 1);
    }
  }
}

TEST(CudaGolden, BadInputIsAClearError) {
  ZC_REQUIRE_GPU();
  KvPool pool(size_t(64) << 20);
  const auto [model, gpu] = load_on_gpu("llama3-tiny");
  GpuRunner runner(gpu, zc::kv::parse_method("fp16"), pool, 1, 64);
  EXPECT_THROW(runner.prefill(0, std::vector<int32_t>{1, -3}), zc::Error);
  EXPECT_THROW(runner.prefill(0, std::vector<int32_t>(65, 1)), zc::Error);
  EXPECT_THROW(runner.decode(std::vector<int32_t>{1}), zc::Error);  // before any prompt
  EXPECT_THROW(GpuRunner(gpu, zc::kv::parse_method("h2o"), pool, 1, 64), zc::Error);
  KvPool tiny(4096);
  GpuRunner small(gpu, zc::kv::parse_method("fp16"), tiny, 1, 64);
  EXPECT_THROW(small.prefill(0, std::vector<int32_t>(40, 1)), zc::Error);  // pool out of memory
}

}  // namespace
