// Host side of the GPU quantizer (pack.h): argument checks, buffers, and the one
// error check after the parameter pass (pack.cu holds the kernels).
#include "cuda/quant/pack.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "cuda/quant/pack_launch.h"
#include "quant/pack.h"

namespace zc::cuda {

using detail::GroupMode;

quant::QuantizedMatrix DeviceQuantized::download() const {
  quant::QuantizedMatrix q;
  q.rows = rows, q.cols = cols, q.bits = bits, q.group = group, q.scheme = scheme;
  q.codes = codes.download();
  q.lo = lo.download();
  q.step = step.download();
  q.channel_scale = channel_scale.download();
  return q;
}

namespace {

[[noreturn]] void report(unsigned long long e, int cols, quant::Scheme scheme) {
  const unsigned long long index = e >> 2;
  const std::string name = quant::scheme_name(scheme);
  switch (static_cast<int>(e & 3u)) {
    case detail::kNonFinite:
      fail("cuda quantize ({}): non-finite value at row {}, col {}", name,
           index / static_cast<unsigned long long>(cols), index % static_cast<unsigned long long>(cols));
    case detail::kLoRange:
      fail("cuda quantize ({}): the minimum of group {} is outside the fp16 range of the stored "
           "parameters", name, index);
    default:
      fail("cuda quantize ({}): the range of group {} is too wide for an fp16 step", name, index);
  }
}

void check_error_flag(const DeviceBuffer<unsigned long long>& err, int cols, quant::Scheme scheme,
                      cudaStream_t stream) {
  unsigned long long e = 0;
  check(cudaMemcpyAsync(&e, err.get(), sizeof(e), cudaMemcpyDeviceToHost, stream), "quantize flag");
  check(cudaStreamSynchronize(stream), "quantize");
  if (e != std::numeric_limits<unsigned long long>::max()) report(e, cols, scheme);
}

}  // namespace

DeviceQuantized quantize(const float* x, int rows, int cols, int bits, quant::Scheme scheme,
                         int group, cudaStream_t stream) {
  if (bits != 2 && bits != 4 && bits != 8) {
    fail("cuda quantize: unsupported bit width {} (supported: 2, 4, 8)", bits);
  }
  if (rows < 0 || cols < 1) fail("cuda quantize: bad shape {} x {} (rows >= 0, cols >= 1)", rows, cols);
  if (scheme == quant::Scheme::Groupwise && (group < 1 || cols % group != 0)) {
    fail("cuda quantize: groupwise group size {} does not divide the {} columns", group, cols);
  }
  if (rows > 0 && x == nullptr) fail("cuda quantize: null input for a {} x {} matrix", rows, cols);

  DeviceQuantized q;
  q.rows = rows, q.cols = cols, q.bits = bits, q.scheme = scheme;
  q.group = scheme == quant::Scheme::Groupwise ? group : 0;
  const size_t count = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const size_t groups = quant::group_count(scheme, rows, cols, group);
  q.codes.resize(quant::packed_bytes(count, bits));
  q.lo.resize(groups);
  q.step.resize(groups);
  if (rows == 0) return q;

  DeviceBuffer<unsigned long long> err(1);
  // Column statistics scratch (2 per group) for the row-parallel kernels.
  DeviceBuffer<unsigned> scratch(2 * std::max(groups, static_cast<size_t>(cols)));
  err.fill_bytes(0xff);
  const float* src = x;
  DeviceBuffer<float> scaled;
  GroupMode mode = GroupMode::Tokenwise;
  switch (scheme) {
    case quant::Scheme::Tokenwise: mode = GroupMode::Tokenwise; break;
    case quant::Scheme::Channelwise: mode = GroupMode::Channelwise; break;
    case quant::Scheme::Groupwise: mode = GroupMode::Groupwise; break;
    case quant::Scheme::Cstq:
      // Columns divided by their fp16 scales, then tokenwise (SPEC.md section 2).
      q.channel_scale.resize(static_cast<size_t>(cols));
      scaled.resize(count);
      check(detail::launch_cstq_scale(x, rows, cols, q.channel_scale.get(), scaled.get(), err.get(),
                                      stream, scratch.get()),
            "cstq scale kernel");
      src = scaled.get();
      mode = GroupMode::Tokenwise;
      break;
  }
  check(detail::launch_fit(src, rows, cols, bits, mode, q.group, q.lo.get(), q.step.get(),
                           err.get(), stream, 0, scratch.get()),
        "fit kernel");
  check_error_flag(err, cols, scheme, stream);
  check(detail::launch_encode(src, rows, cols, bits, mode, q.group, q.lo.get(), q.step.get(),
                              q.codes.get(), stream),
        "encode kernel");
  return q;
}

}  // namespace zc::cuda
