// CPU measurements of `zipcache bench --device cpu` (bench_cpu.h).
#include "bench_cpu.h"

#include <algorithm>
#include <chrono>

#include "core/rng.h"

namespace zc::app {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

BenchResult run_cpu_bench(const model::Model& model, const kv::MethodConfig& method, const BenchConfig& bc) {
  const model::ModelConfig& c = model.config();
  Rng rng(1234);
  BenchResult res;
  res.method = method.label.empty() ? kv::method_name(method.method) : method.label;
  res.batch = bc.batch, res.context = bc.context, res.gen = bc.gen;
  const int limit = bc.context + bc.gen + 1;
  std::vector<double> prefill_times;
  std::vector<model::SequenceState> seqs;
  for (int rep = 0; rep < std::max(1, bc.reps); ++rep) {
    seqs.clear();
    const auto t0 = Clock::now();
    for (int b = 0; b < bc.batch; ++b) {
      seqs.push_back(model.new_sequence(method, limit));
      std::vector<int32_t> ids(static_cast<size_t>(bc.context));
      for (auto& t : ids) t = int32_t(rng.integer(0, c.vocab_size - 1));
      (void)model.forward(seqs.back(), ids);
    }
    prefill_times.push_back(seconds_since(t0));
  }
  res.prefill_s = median(prefill_times);

  std::vector<double> steps;
  std::vector<int32_t> tokens(static_cast<size_t>(bc.batch));
  for (int s = 0; s < bc.gen; ++s) {
    std::vector<model::ForwardRequest> batch(static_cast<size_t>(bc.batch));
    for (int b = 0; b < bc.batch; ++b) {
      tokens[size_t(b)] = int32_t(rng.integer(0, c.vocab_size - 1));
      batch[size_t(b)].seq = &seqs[size_t(b)];
      batch[size_t(b)].tokens = std::span<const int32_t>(&tokens[size_t(b)], 1);
    }
    const auto t0 = Clock::now();
    (void)model.forward(batch);
    if (s >= std::min(3, bc.gen - 1)) steps.push_back(seconds_since(t0) * 1e3);
  }
  res.decode_ms = median(steps);
  res.decode_p10_ms = percentile(steps, 0.1);
  res.decode_p90_ms = percentile(steps, 0.9);
  res.decode_eager_ms = 0;  // no CUDA graphs on the CPU: nothing to compare
  res.decode_mean_ms = mean(steps);
  res.decode_samples_ms = steps;
  res.tokens_per_s = res.decode_mean_ms > 0 ? bc.batch * 1e3 / res.decode_mean_ms : 0;
  kv::MemoryReport mem;
  for (const auto& s : seqs) mem += s.memory();
  res.kv_bytes = mem.total();
  res.kv_fp16_bytes = mem.fp16_bytes;
  res.kv_peak_bytes = res.kv_peak_timed_bytes = mem.total();
  const auto& w = model.weights();
  size_t weights = w.embed.size() + w.norm.size() + w.lm_head.size();
  for (const auto& l : w.layers) {
    for (const auto* v : {&l.input_norm, &l.post_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm,
                          &l.k_norm, &l.w_gate, &l.w_up, &l.w_down, &l.b_gate, &l.b_up, &l.b_down}) {
      weights += v->size();
    }
  }
  res.weight_bytes = weights * sizeof(float);
  res.peak_bytes = res.weight_bytes + res.kv_peak_bytes;
  return res;
}

}  // namespace zc::app
