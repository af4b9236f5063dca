// GPU measurements of `zipcache bench` (bench_gpu.h).
#include "bench_gpu.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "model/presets.h"

#ifdef ZC_HAVE_CUDA
#include "core/half.h"
#include "cuda/core/device.h"
#include "cuda/engine/gpu_model.h"
#include "cuda/engine/gpu_runner.h"
#include "cuda/engine/op_timer.h"
#include "model/forward.h"
#endif

namespace zc::app {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}
double mean(const std::vector<double>& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / double(v.size());
}
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

#ifdef ZC_HAVE_CUDA

struct BenchModel::Impl {
  std::string name;
  model::ModelConfig config;
  cuda::GpuModel gpu;
};

bool gpu_bench_available(std::string* why) { return cuda::device_available(why); }

size_t gpu_free_bytes() {
  size_t free_mem = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free_mem, &total), "cudaMemGetInfo");
  return free_mem;
}

BenchModel BenchModel::from_dir(const std::string& dir) {
  const auto m = model::Model::load(dir);
  return BenchModel(new Impl{dir, m.config(), cuda::GpuModel::upload(m.config(), m.weights())});
}

BenchModel BenchModel::synthetic(const std::string& preset, uint64_t seed) {
  const model::ModelConfig c = model::preset_config(preset);
  return BenchModel(new Impl{preset + " (synthetic)", c, cuda::GpuModel::synthetic(c, seed)});
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Random prompt ids, reproducible.
std::vector<int32_t> random_ids(Rng& rng, int n, int vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = int32_t(rng.integer(0, vocab - 1));
  return ids;
}

// Random keys and values of one T-token prompt (and the bf16 q/k the probe pass
// reads), uploaded once per run; fill() quantizes them into every layer of a
// sequence's cache (the code path a prefill takes after attention), for batches too
// large to prefill here. Keys and values share one buffer: only the bytes' layout
// matters for the timing.
struct SyntheticKv {
  int T = 0, kvw = 0;
  cuda::DeviceBuffer<float> kv;
  cuda::DeviceBuffer<uint16_t> qb, kb;

  SyntheticKv(const model::ModelConfig& c, int tokens, Rng& rng)
      : T(tokens), kvw(c.n_kv_heads * c.head_dim) {
    std::vector<float> kv_host(size_t(T) * size_t(kvw));
    for (auto& x : kv_host) x = float(rng.normal());
    std::vector<uint16_t> q_host(size_t(T) * size_t(c.n_heads) * size_t(c.head_dim)), k_host(kv_host.size());
    for (auto& x : q_host) x = float_to_bf16(float(rng.normal()));
    for (size_t i = 0; i < k_host.size(); ++i) k_host[i] = float_to_bf16(kv_host[i]);
    kv.upload(kv_host);
    qb.upload(q_host);
    kb.upload(k_host);
  }
  void fill(cuda::GpuRunner& r, int n_layers, int seq) const {
    for (int l = 0; l < n_layers; ++l) r.cache().prefill(l, seq, kv.get(), kv.get(), kvw, T, qb.get(), kb.get());
  }
};

// After the measurements: sequence 0 prefilled again and profile_steps decode steps of
// the batch, every operation timed (the runner decodes eagerly while a timer is set).
// The events are collected after the prefill and after each step, so one step's worth
// of events is reused throughout. A largest-batch run (synthetic_fill: its caches were
// never prefilled) profiles the decode steps only (prefill_tokens 0).
BenchProfile profile_run(cuda::GpuRunner& runner, const model::ModelConfig& c, const BenchConfig& bc, Rng& rng) {
  BenchProfile p;
  p.prefill_tokens = bc.synthetic_fill ? 0 : bc.context;
  p.decode_steps = bc.profile_steps;
  cuda::OpTimer timer;
  timer.reserve(24 * c.n_layers + 8);  // one pass's operations, created before timing
  std::vector<int32_t> prompt;
  if (!bc.synthetic_fill) {
    runner.cache().reset(0);
    prompt = random_ids(rng, bc.context, c.vocab_size);
  }
  runner.synchronize();
  runner.set_op_timer(&timer);
  try {
    if (!bc.synthetic_fill) {
      runner.prefill(0, prompt);
      p.prefill = timer.report();
      timer.clear();
    }
    std::vector<int32_t> tokens(size_t(bc.batch));
    for (int s = 0; s < bc.profile_steps; ++s) {
      for (auto& t : tokens) t = int32_t(rng.integer(0, c.vocab_size - 1));
      runner.decode(tokens);
      timer.collect();
    }
    p.decode = timer.report();
  } catch (...) {
    runner.set_op_timer(nullptr);
    throw;
  }
  runner.set_op_timer(nullptr);
  return p;
}

}  // namespace

BenchResult BenchModel::run(const kv::MethodConfig& method, const BenchConfig& bc, size_t pool_bytes) const {
  const model::ModelConfig& c = impl_->config;
  cuda::KvPool pool(pool_bytes);
  const bool profile = bc.profile_steps > 0;
  // Room for the prompt, the graph and the eager decode steps, and the profile's steps.
  cuda::GpuRunner runner(impl_->gpu, method, pool, bc.batch,
                         bc.context + (bc.eager_steps ? 2 : 1) * bc.gen + 1 + (profile ? bc.profile_steps : 0));
  Rng rng(1234);
  BenchResult res;
  res.method = method.label.empty() ? kv::method_name(method.method) : method.label;
  res.batch = bc.batch, res.context = bc.context, res.gen = bc.gen, res.synthetic_fill = bc.synthetic_fill;

  // One untimed prefill first: cuBLAS picks and loads its kernels on first use (the
  // first method of a run would otherwise pay for everyone).
  if (!bc.synthetic_fill) {
    runner.prefill(0, random_ids(rng, std::min(bc.context, 256), c.vocab_size));
    runner.synchronize();
  }
  std::unique_ptr<SyntheticKv> synthetic;
  if (bc.synthetic_fill) synthetic = std::make_unique<SyntheticKv>(c, bc.context, rng);
  std::vector<double> prefill_times;
  for (int rep = 0; rep < std::max(1, bc.reps); ++rep) {
    for (int b = 0; b < bc.batch; ++b) runner.cache().reset(b);
    runner.synchronize();
    const auto t0 = Clock::now();
    for (int b = 0; b < bc.batch; ++b) {
      if (bc.synthetic_fill) {
        synthetic->fill(runner, c.n_layers, b);
      } else {
        runner.prefill(b, random_ids(rng, bc.context, c.vocab_size));
      }
    }
    runner.synchronize();
    prefill_times.push_back(seconds_since(t0));
  }
  if (!bc.synthetic_fill) res.prefill_s = median(prefill_times);

  // Decode: warm-up steps first (cuBLAS heuristics, first-touch), then timed steps,
  // each ending in a synchronization (the latency a user sees per token).
  std::vector<int32_t> tokens(size_t(bc.batch), 1);
  const int warmup = std::min(3, bc.gen);
  const auto timed_steps = [&] {  // ms of each step after the warm-up ones
    std::vector<double> ms;
    for (int s = 0; s < bc.gen; ++s) {
      for (auto& t : tokens) t = int32_t(rng.integer(0, c.vocab_size - 1));
      const auto t0 = Clock::now();
      runner.decode(tokens);
      runner.synchronize();
      if (s >= warmup) ms.push_back(seconds_since(t0) * 1e3);
    }
    return ms;
  };
  const std::vector<double> steps = timed_steps();
  res.decode_ms = median(steps);
  res.kv_peak_timed_bytes = pool.peak();
  // The same number of steps again without CUDA graphs, for the comparison.
  if (bc.eager_steps) {
    runner.set_cuda_graphs(false);
    res.decode_eager_ms = median(timed_steps());
  }
  res.decode_p10_ms = percentile(steps, 0.1);
  res.decode_p90_ms = percentile(steps, 0.9);
  res.decode_mean_ms = mean(steps);
  res.decode_samples_ms = steps;
  res.tokens_per_s = res.decode_mean_ms > 0 ? bc.batch * 1e3 / res.decode_mean_ms : 0;
  const kv::MemoryReport mem = runner.cache().memory();
  res.kv_fp16_bytes = mem.fp16_bytes;
  res.kv_bytes = pool.used();
  res.kv_peak_bytes = pool.peak();
  res.weight_bytes = impl_->gpu.weight_bytes();
  res.workspace_bytes = runner.workspace_bytes();
  res.peak_bytes = res.weight_bytes + res.workspace_bytes + res.kv_peak_bytes;
  if (profile) res.profile = profile_run(runner, c, bc, rng);
  return res;
}

#else  // built without the CUDA backend

struct BenchModel::Impl {
  model::ModelConfig config;
};
bool gpu_bench_available(std::string* why) {
  if (why) *why = "this zipcache was built without CUDA (nvcc was not found at configure time)";
  return false;
}
size_t gpu_free_bytes() { return 0; }
BenchModel BenchModel::from_dir(const std::string&) { fail("zipcache bench: built without CUDA"); }
BenchModel BenchModel::synthetic(const std::string&, uint64_t) { fail("zipcache bench: built without CUDA"); }
BenchResult BenchModel::run(const kv::MethodConfig&, const BenchConfig&, size_t) const {
  fail("zipcache bench: built without CUDA");
}

#endif

BenchModel::BenchModel(Impl* impl) : impl_(impl) {}
BenchModel::~BenchModel() { delete impl_; }
BenchModel::BenchModel(BenchModel&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
BenchModel& BenchModel::operator=(BenchModel&& o) noexcept {
  std::swap(impl_, o.impl_);
  return *this;
}
const model::ModelConfig& BenchModel::config() const { return impl_->config; }
std::string BenchModel::name() const {
#ifdef ZC_HAVE_CUDA
  return impl_->name;
#else
  return "";
#endif
}

}  // namespace zc::app
