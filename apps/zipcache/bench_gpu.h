// The measurements behind `zipcache bench` (issue 4), in the spirit of llama-bench:
// one configuration (model, KV method, batch, context) per call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/engine/op_report.h"  // plain C++ (no CUDA): compiles in every build
#include "kv/method.h"
#include "model/config.h"

namespace zc::app {

struct BenchConfig {
  int batch = 8, context = 4096, gen = 32;
  int reps = 1;                  // prefill repetitions (median)
  bool synthetic_fill = false;   // fill the cache by quantizing random k/v, not by a prefill
  int profile_steps = 0;         // > 0: profile (BenchProfile) with this many decode steps
  // Also time the steps again without CUDA graphs (decode_eager_ms). The largest-batch
  // runs skip them: their room (gen more tokens per sequence) would shrink the batch,
  // which should hold context + gen tokens only.
  bool eager_steps = true;
};

// Per-operation GPU time (cuda/engine/op_timer.h) of one extra prefill of one sequence
// and of a few eager decode steps of the whole batch, run after the measurements (so
// they change none of them). Decode steps run without CUDA graphs (events cannot be
// recorded inside one), so small kernels include launch latency the graph would hide.
struct BenchProfile {
  int prefill_tokens = 0, decode_steps = 0;
  cuda::OpReport prefill, decode;
};

struct BenchResult {
  std::string method;
  int batch = 0, context = 0, gen = 0;
  double prefill_s = -1;      // whole batch, sequence after sequence (median of reps); -1: not run
  double decode_ms = 0;       // median ms per decode step (all sequences): a typical step's latency
  double decode_p10_ms = 0, decode_p90_ms = 0;
  // Mean ms per decode step over the same steps: every step counts, the periodic ones
  // included (a new fp16 page every 32 tokens, KIVI's block compressions, ZipCache's
  // chunks, a CUDA graph's capture when the pages grow), which a median leaves out.
  double decode_mean_ms = 0;
  double tokens_per_s = 0;    // batch / decode_mean_ms: what the steps delivered, as llama-bench's t/s
  double decode_eager_ms = 0; // the same steps launched kernel by kernel (no CUDA graph); 0: not run (CPU, largest batch)
  // ms of every timed step in order (llama-bench's samples): where the periodic steps fall.
  std::vector<double> decode_samples_ms;
  size_t kv_bytes = 0;        // pool bytes the caches hold at the end
  size_t kv_fp16_bytes = 0;   // what an fp16 cache of the same tokens takes
  size_t kv_peak_bytes = 0;   // most pool bytes in use at once
  // The same through the prompt and the timed steps only (before the eager ones): what a
  // sequence of context + gen tokens needs; it sizes the largest batch.
  size_t kv_peak_timed_bytes = 0;
  size_t weight_bytes = 0, workspace_bytes = 0;
  size_t peak_bytes = 0;      // weights + workspace + KV peak
  bool synthetic_fill = false;
  std::optional<BenchProfile> profile;  // when BenchConfig::profile_steps > 0 (decode only with synthetic_fill)
  double compression() const { return kv_bytes ? double(kv_fp16_bytes) / double(kv_bytes) : 0; }
};

// The model to benchmark on the GPU: a folder, or a preset's shape with random weights.
class BenchModel {
 public:
  static BenchModel from_dir(const std::string& dir);
  static BenchModel synthetic(const std::string& preset, uint64_t seed);
  ~BenchModel();
  BenchModel(BenchModel&&) noexcept;
  BenchModel& operator=(BenchModel&&) noexcept;
  const model::ModelConfig& config() const;
  std::string name() const;

  // Runs one configuration with a KV pool of pool_bytes. Throws zc::Error (e.g. the
  // pool is too small: the message says how much was needed).
  BenchResult run(const kv::MethodConfig& method, const BenchConfig& config, size_t pool_bytes) const;

 private:
  struct Impl;
  explicit BenchModel(Impl* impl);
  Impl* impl_ = nullptr;
};

// Median, mean and p-quantile (0..1) of timings (0 when empty).
double median(std::vector<double> v);
double mean(const std::vector<double>& v);
double percentile(std::vector<double> v, double p);

// Whether this build has the GPU engine and a GPU is present; when not, *why says why.
bool gpu_bench_available(std::string* why);
// Free device memory now.
size_t gpu_free_bytes();

}  // namespace zc::app
