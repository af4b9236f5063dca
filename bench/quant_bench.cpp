// Quantize / dequantize a 4096 x 128 block (4096 tokens of one KV head, d = 128) per
// scheme (SPEC.md section 2) and bit width. Bytes processed: the fp32 input for
// quantize, the stored (packed codes + fp16 parameters) bytes for dequantize, so the
// GB/s column reads as "input consumed per second" in both.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "quant/quantizer.h"

namespace {

constexpr int kRows = 4096, kCols = 128, kGroup = 32;

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    zc::Rng rng(7);
    std::vector<float> v(size_t(kRows) * kCols);
    for (size_t i = 0; i < v.size(); ++i) {
      const int c = int(i % kCols);
      v[i] = rng.normal(c % 7 == 3 ? 2.0f : 0.0f, c % 11 == 5 ? 4.0f : 1.0f);
    }
    return v;
  }();
  return x;
}

int group_of(zc::quant::Scheme s) { return s == zc::quant::Scheme::Groupwise ? kGroup : 0; }

void quantize(benchmark::State& state, zc::quant::Scheme scheme, int bits) {
  const auto& x = input();
  for (auto _ : state) {
    auto q = zc::quant::quantize(x.data(), kRows, kCols, bits, scheme, group_of(scheme));
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(x.size() * sizeof(float)));
}

void dequantize(benchmark::State& state, zc::quant::Scheme scheme, int bits) {
  const auto& x = input();
  const auto q = zc::quant::quantize(x.data(), kRows, kCols, bits, scheme, group_of(scheme));
  std::vector<float> out(x.size());
  for (auto _ : state) {
    zc::quant::dequantize(q, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(q.bytes()));
}

// Names: BM_Quantize/<scheme>/<bits>bit, e.g. BM_Dequantize/channelwise/2bit.
const bool registered = [] {
  using zc::quant::Scheme;
  for (const char* what : {"BM_Quantize", "BM_Dequantize"}) {
    const bool is_quantize = std::string(what) == "BM_Quantize";
    for (Scheme s : {Scheme::Tokenwise, Scheme::Channelwise, Scheme::Groupwise, Scheme::Cstq}) {
      for (int bits : {2, 4, 8}) {
        const std::string name = std::string(what) + "/" + zc::quant::scheme_name(s) + "/" +
                                 std::to_string(bits) + "bit";
        if (is_quantize) {
          benchmark::RegisterBenchmark(name.c_str(), quantize, s, bits)
              ->Unit(benchmark::kMicrosecond);
        } else {
          benchmark::RegisterBenchmark(name.c_str(), dequantize, s, bits)
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return true;
}();

}  // namespace
