// Host side of the GPU sampler (sampling.h): the draws' checks, their staging through
// pinned memory, the launch, and the tests' distribution (sampling.cu holds the kernel).
#include "cuda/model/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "core/error.h"
#include "cuda/model/sampling_launch.h"

namespace zc::cuda {

// The kernel reads the staged GpuDraws as its DrawArgs.
static_assert(sizeof(GpuDraw) == sizeof(detail::DrawArgs));
static_assert(offsetof(GpuDraw, row) == offsetof(detail::DrawArgs, row));
static_assert(offsetof(GpuDraw, temperature) == offsetof(detail::DrawArgs, temperature));
static_assert(offsetof(GpuDraw, top_k) == offsetof(detail::DrawArgs, top_k));
static_assert(offsetof(GpuDraw, top_p) == offsetof(detail::DrawArgs, top_p));
static_assert(offsetof(GpuDraw, min_p) == offsetof(detail::DrawArgs, min_p));
static_assert(offsetof(GpuDraw, u) == offsetof(detail::DrawArgs, u));

namespace {

// engine::SamplingParams::validate's rules, and those of a draw's row and uniform.
void check_draw(const GpuDraw& d, int rows, size_t j) {
  if (d.row < 0 || d.row >= rows) fail("cuda GpuSampler: draw {} is of row {}, outside {} rows", j, d.row, rows);
  if (!(d.temperature > 0.0f) || !std::isfinite(d.temperature))
    fail("cuda GpuSampler: draw {} has temperature {}; a draw needs a finite temperature > 0", j, d.temperature);
  if (!(d.top_p > 0.0f && d.top_p <= 1.0f)) fail("cuda GpuSampler: draw {} has top_p {}, not in (0, 1]", j, d.top_p);
  if (!(d.min_p >= 0.0f && d.min_p <= 1.0f)) fail("cuda GpuSampler: draw {} has min_p {}, not in [0, 1]", j, d.min_p);
  if (!(d.u >= 0.0 && d.u < 1.0)) fail("cuda GpuSampler: draw {} has the uniform {}, not in [0, 1)", j, d.u);
}

}  // namespace

void GpuSampler::set_ctas_per_row(int ctas) {
  if (ctas < 0 || ctas > detail::kMaxCtasPerRow)
    fail("cuda GpuSampler: {} CTAs per row; choose 0 (automatic) or 1 to {}", ctas, detail::kMaxCtasPerRow);
  forced_ctas_ = ctas;
}

int GpuSampler::ctas_per_row(int rows, int vocab) {
  if (largest_ < 0) {
    int device = 0;
    check(cudaGetDevice(&device), "GpuSampler");
    check(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device), "GpuSampler");
    check(detail::largest_ctas_per_row(detail::kMaxCtasPerRow, &largest_), "GpuSampler");
  }
  if (forced_ctas_ > largest_)
    fail("cuda GpuSampler: {} CTAs per row do not fit this GPU's thread block clusters (at most {} here)",
         forced_ctas_, largest_);
  if (forced_ctas_ > 0) return forced_ctas_;
  // A CTA takes a whole SM (1024 threads of 60 registers); a row's share under ~4k
  // logits a CTA is mostly the group's barriers; 16 CTAs a row were slower than 8 at 8
  // rows on an H200 (docs/benchmarks.md).
  const int by_sms = std::max(1, sms_ / std::max(rows, 1));
  const int by_vocab = std::max(1, (vocab + 4095) / 4096);
  return std::min({8, largest_, by_sms, by_vocab});
}

void GpuSampler::grow_draws(size_t n) {
  // Grown, never shrunk: a reallocation (cudaMalloc) would wait for the device.
  if (draws_.size() < n) draws_.resize(std::max<size_t>(n, 64));
}

void GpuSampler::draw(const float* logits, int rows, int vocab, std::span<const GpuDraw> draws, int32_t* out,
                      cudaStream_t stream) {
  if (rows < 0) fail("cuda GpuSampler::draw: rows must be >= 0, got {}", rows);
  if (vocab < 1) fail("cuda GpuSampler::draw: vocab must be >= 1, got {}", vocab);
  if (draws.empty()) return;
  if (logits == nullptr) fail("cuda GpuSampler::draw: logits is a null pointer");
  if (out == nullptr) fail("cuda GpuSampler::draw: out is a null pointer");
  std::vector<bool> seen(size_t(rows), false);
  for (size_t j = 0; j < draws.size(); ++j) {
    check_draw(draws[j], rows, j);
    if (seen[size_t(draws[j].row)]) fail("cuda GpuSampler::draw: row {} is drawn twice", draws[j].row);
    seen[size_t(draws[j].row)] = true;
  }
  const size_t n = draws.size();
  staged_.reserve(n);
  grow_draws(n);
  std::memcpy(staged_.get(), draws.data(), n * sizeof(GpuDraw));
  check(cudaMemcpyAsync(draws_.get(), staged_.get(), n * sizeof(GpuDraw), cudaMemcpyHostToDevice, stream),
        "GpuSampler::draw");
  check(detail::launch_draw_rows(logits, vocab, reinterpret_cast<const detail::DrawArgs*>(draws_.get()), int(n),
                                 out, nullptr, ctas_per_row(int(n), vocab), stream),
        "GpuSampler::draw");
  check_launch("GpuSampler::draw");
}

std::vector<double> GpuSampler::distribution(const float* logits_device, int vocab, const GpuDraw& draw,
                                             int32_t* token) {
  if (vocab < 1) fail("cuda GpuSampler::distribution: vocab must be >= 1, got {}", vocab);
  if (logits_device == nullptr) fail("cuda GpuSampler::distribution: logits is a null pointer");
  check_draw(draw, 1, 0);
  grow_draws(1);
  check(cudaMemcpy(draws_.get(), &draw, sizeof(GpuDraw), cudaMemcpyHostToDevice), "GpuSampler::distribution");
  token_.resize(1);
  token_.fill_bytes(0xff);
  dist_.resize(size_t(vocab));
  check(detail::launch_draw_rows(logits_device, vocab, reinterpret_cast<const detail::DrawArgs*>(draws_.get()), 1,
                                 token_.get(), dist_.get(), ctas_per_row(1, vocab), nullptr),
        "GpuSampler::distribution");
  check_launch("GpuSampler::distribution");
  check(cudaDeviceSynchronize(), "GpuSampler::distribution");
  const int32_t t = token_.download()[0];
  if (t == -1) fail("cuda GpuSampler::distribution: the logits hold a NaN");
  if (t == -2) fail("cuda GpuSampler::distribution: the largest logit is not finite");
  if (token) *token = t;
  return dist_.download();
}

}  // namespace zc::cuda
