// The GPU's quantize-into-pages kernels (cuda/kv/quantize_pages.cu) byte for byte
// against the CPU: every set is quantized by src/quant (quant::quantize, double
// arithmetic) and laid out by the host page builder (cuda/kv/kv_pages.h); the GPU
// quantizes the same rows, picked through per-head token lists, into a pool with the
// same page descriptors, and both pools must be identical: codes, parameters, padding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "cuda/kv/kv_pages.h"
#include "cuda/kv/page_launch.h"
#include "cuda/quant/pack_launch.h"
#include "gpu_test.h"
#include "quant/quantizer.h"

namespace {

using zc::cuda::DeviceBuffer;
using zc::quant::Scheme;

struct Case {
  int T, n_kv, d, n_salient;  // n_salient 0: one set of all T rows (no index list)
  Scheme values;
  int vgroup;      // groupwise values only
  int block_rows;  // key statistics per block (0: the whole set)
  bool via_fp16;
  bool grid;  // inputs on a grid of halves: many codes land exactly between two levels
};

std::vector<float> random_rows(zc::Rng& rng, const Case& c) {
  std::vector<float> x(size_t(c.T) * size_t(c.n_kv) * size_t(c.d));
  for (size_t i = 0; i < x.size(); ++i) {
    if (c.grid) {
      x[i] = 0.5f * float(rng.integer(0, 6));  // 0, 0.5, ..., 3: 2-bit steps of 1, halves between
    } else {
      const float outlier = (i % size_t(c.d)) % 11 == 3 ? 6.0f : 1.0f;  // channelwise key outliers
      x[i] = rng.normal() * outlier;
    }
  }
  return x;
}

// Rows idx of head h of x ([T][n_kv][d]) as a matrix [idx.size()][d], fp16-rounded if asked.
std::vector<float> pick(const std::vector<float>& x, const Case& c, int h, const std::vector<int>& idx) {
  std::vector<float> m(idx.size() * size_t(c.d));
  for (size_t r = 0; r < idx.size(); ++r) {
    for (int e = 0; e < c.d; ++e) {
      float v = x[(size_t(idx[r]) * size_t(c.n_kv) + size_t(h)) * size_t(c.d) + size_t(e)];
      if (c.via_fp16) v = zc::half_to_float(zc::float_to_half(v));
      m[r * size_t(c.d) + size_t(e)] = v;
    }
  }
  return m;
}

void run_case(const Case& c, zc::Rng& rng) {
  SCOPED_TRACE(::testing::Message() << "T " << c.T << ", heads " << c.n_kv << ", d " << c.d << ", salient "
                                    << c.n_salient << ", values " << int(c.values) << ", block " << c.block_rows
                                    << (c.via_fp16 ? ", via fp16" : "") << (c.grid ? ", grid" : ""));
  const std::vector<float> k = random_rows(rng, c), v = random_rows(rng, c);
  // Per head: salient rows (4 bits) and the rest (2 bits), each ascending.
  const int n_sets = c.n_salient > 0 ? 2 : 1;
  const int n0 = c.n_salient > 0 ? c.n_salient : c.T, n1 = c.T - c.n_salient;
  std::vector<int32_t> idx0(size_t(c.n_kv) * size_t(n0)), idx1(size_t(c.n_kv) * size_t(std::max(n1, 0)));
  zc::cuda::PagedKvBuilder builder(c.d);
  for (int h = 0; h < c.n_kv; ++h) {
    std::vector<int> perm(size_t(c.T));
    std::iota(perm.begin(), perm.end(), 0);
    if (n_sets == 2) {
      for (int i = c.T - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(rng.integer(0, i))]);
    }
    std::vector<int> set0(perm.begin(), perm.begin() + n0), set1(perm.begin() + n0, perm.end());
    std::sort(set0.begin(), set0.end());
    std::sort(set1.begin(), set1.end());
    std::copy(set0.begin(), set0.end(), idx0.begin() + ptrdiff_t(size_t(h) * size_t(n0)));
    if (n_sets == 2) std::copy(set1.begin(), set1.end(), idx1.begin() + ptrdiff_t(size_t(h) * size_t(n1)));
    builder.begin_list();
    const auto add_set = [&](const std::vector<int>& rows, int bits) {
      const int block = c.block_rows > 0 ? c.block_rows : int(rows.size());
      for (size_t r0 = 0; r0 < rows.size(); r0 += size_t(block)) {
        const std::vector<int> part(rows.begin() + ptrdiff_t(r0),
                                    rows.begin() + ptrdiff_t(std::min(rows.size(), r0 + size_t(block))));
        const auto km = pick(k, c, h, part), vm = pick(v, c, h, part);
        const int n = int(part.size());
        builder.add_block(zc::quant::quantize(km.data(), n, c.d, bits, Scheme::Channelwise),
                          zc::quant::quantize(vm.data(), n, c.d, bits, c.values,
                                              c.values == Scheme::Groupwise ? c.vgroup : 0));
      }
    };
    add_set(set0, n_sets == 2 ? 4 : 2);
    if (n_sets == 2 && n1 > 0) add_set(set1, 2);
  }

  // The builder's descriptors in the GPU cache's table form [list][cap], sequence 0.
  const int cap = builder.max_pages();
  std::vector<zc::cuda::KvPage> table(size_t(c.n_kv) * size_t(cap));
  for (int h = 0; h < c.n_kv; ++h) {
    for (int p = builder.offsets()[size_t(h)]; p < builder.offsets()[size_t(h) + 1]; ++p) {
      table[size_t(h) * size_t(cap) + size_t(p - builder.offsets()[size_t(h)])] = builder.pages()[size_t(p)];
    }
  }
  const auto dk = zc_test::dev(k), dv = zc_test::dev(v);
  const auto dtable = zc_test::dev(table);
  const auto di0 = zc_test::dev(idx0), di1 = zc_test::dev(idx1.empty() ? std::vector<int32_t>{0} : idx1);
  DeviceBuffer<uint8_t> pool(builder.pool().size());
  pool.fill_bytes(0);
  DeviceBuffer<unsigned long long> err(1);
  err.fill_bytes(0xff);

  zc::cuda::detail::QuantizeJob job;
  job.k = dk.get(), job.v = dv.get(), job.stride = c.n_kv * c.d, job.n_kv = c.n_kv, job.d = c.d;
  job.vgroup = c.values == Scheme::Groupwise ? c.vgroup : c.d;
  job.cstq = c.values == Scheme::Cstq, job.via_fp16 = c.via_fp16;
  job.table = dtable.get(), job.cap = cap, job.seq = 0, job.pool = pool.get(), job.err = err.get();
  job.n_sets = n_sets;
  const int block0 = c.block_rows > 0 ? std::min(c.block_rows, n0) : n0;
  job.sets[0] = {n_sets == 2 ? di0.get() : nullptr, n0, n0, n_sets == 2 ? 4 : 2, 0, block0, nullptr};
  if (n_sets == 2) {
    const int pages0 = (n0 + 31) / 32, block1 = c.block_rows > 0 ? std::min(c.block_rows, n1) : n1;
    job.sets[1] = {di1.get(), n1, n1, 2, pages0, block1, nullptr};
  }
  size_t words = 0;
  for (int i = 0; i < n_sets; ++i) {
    words += zc::cuda::detail::quantize_stats_words(job.sets[i].n, job.sets[i].block_rows, c.n_kv, c.d);
  }
  DeviceBuffer<unsigned> stats(std::max<size_t>(words, 1));
  zc::cuda::check(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), "quantize sets");
  const std::vector<uint8_t> got = zc_test::sync_download(pool);
  EXPECT_EQ(err.download()[0], ~0ull) << "no error reported for finite inputs";

  const std::vector<uint8_t>& want = builder.pool();
  ASSERT_EQ(got.size(), want.size());
  size_t first_diff = want.size(), diffs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      first_diff = std::min(first_diff, i);
      ++diffs;
    }
  }
  EXPECT_EQ(diffs, 0u) << "first differing byte " << first_diff << " (16-byte unit " << first_diff / 16 << ")";
}

TEST(CudaQuantizePages, ZipCacheSetsMatchTheCpuQuantizerByteForByte) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(61);
  for (int d : {64, 128}) {
    for (int T : {2, 33, 97, 300}) {
      const int sal = std::max(1, T / 10);
      run_case({T, 3, d, sal, Scheme::Cstq, 0, 0, false, false}, rng);       // one block per set
      run_case({T, 2, d, sal, Scheme::Cstq, 0, 64, false, false}, rng);      // block=64
      run_case({T, 2, d, sal, Scheme::Tokenwise, 0, 0, false, false}, rng);  // tokenwise values
      run_case({T, 1, d, sal, Scheme::Groupwise, 32, 96, false, false}, rng);
      run_case({T, 2, d, sal, Scheme::Cstq, 0, 0, false, true}, rng);  // exact halves
    }
  }
  run_case({1, 2, 128, 0, Scheme::Cstq, 0, 0, false, false}, rng);  // one token, one set
  run_case({4096, 2, 128, 410, Scheme::Cstq, 0, 0, false, false}, rng);  // the Llama-3 prompt's size
}

// KIVI's prompt: 32-token blocks, groupwise values (32 channels), via the fp16 window.
TEST(CudaQuantizePages, KiviBlocksMatchTheCpuQuantizerByteForByte) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(62);
  for (int d : {64, 128, 256}) {
    for (int T : {32, 96, 320}) {
      run_case({T, 2, d, 0, Scheme::Groupwise, 32, 32, true, false}, rng);
      run_case({T, 1, d, 0, Scheme::Groupwise, 32, 32, true, true}, rng);
    }
  }
}

TEST(CudaQuantizePages, NonFiniteInputsAndBadJobsAreReported) {
  ZC_REQUIRE_GPU();
  const int T = 40, d = 64, n_kv = 2;
  std::vector<float> k(size_t(T) * n_kv * d, 1.0f), v(k.size(), 1.0f);
  k[(size_t(7) * n_kv + 1) * d + 5] = std::nanf("");
  const auto dk = zc_test::dev(k), dv = zc_test::dev(v);
  std::vector<zc::cuda::KvPage> table(size_t(n_kv) * 2);
  for (auto& pg : table) pg.kbits = pg.vbits = 2, pg.values = zc::cuda::PageValues::Tokenwise, pg.vgroup = d;
  const auto dtable = zc_test::dev(table);
  DeviceBuffer<uint8_t> pool(size_t(1) << 16);
  DeviceBuffer<unsigned long long> err(1);
  err.fill_bytes(0xff);
  zc::cuda::detail::QuantizeJob job;
  job.k = dk.get(), job.v = dv.get(), job.stride = n_kv * d, job.n_kv = n_kv, job.d = d, job.vgroup = d;
  job.table = dtable.get(), job.cap = 2, job.pool = pool.get(), job.err = err.get();
  job.sets[0].n = T, job.sets[0].bits = 2;
  DeviceBuffer<unsigned> stats(zc::cuda::detail::quantize_stats_words(T, 0, n_kv, d));
  zc::cuda::check(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), "quantize sets");
  const unsigned long long e = zc_test::sync_download(err)[0];
  EXPECT_EQ(e & 3u, unsigned(zc::cuda::detail::kNonFinite));
  EXPECT_EQ(e >> 2, (7ull * n_kv + 1) * d + 5) << "the element's index in the set";
  // Shapes the kernels do not take come back as errors, never as launches.
  job.vgroup = 48;
  EXPECT_EQ(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), cudaErrorInvalidValue);
  job.vgroup = d, job.sets[0].bits = 3;
  EXPECT_EQ(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), cudaErrorInvalidValue);
  job.sets[0].bits = 2, job.sets[0].block_rows = 20;
  EXPECT_EQ(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), cudaErrorInvalidValue);
  job.sets[0].block_rows = 0, job.stride = n_kv * d + 1;  // rows not 16-byte aligned
  EXPECT_EQ(zc::cuda::detail::launch_quantize_sets(job, stats.get(), nullptr), cudaErrorMisalignedAddress);
}

// A batch of jobs is checked job by job before anything is copied or launched (no GPU
// needed): one bad job, or jobs of different head shapes (one grid for all), refuse the
// whole batch; an empty batch does nothing.
TEST(CudaQuantizePages, BadBatchesAreErrorsBeforeAnyLaunch) {
  namespace d = zc::cuda::detail;
  alignas(16) static float rows[4 * 64] = {};
  d::QuantizeJob job;
  job.k = rows, job.v = rows, job.stride = 64, job.n_kv = 1, job.d = 64, job.vgroup = 64;
  job.sets[0].n = 4, job.sets[0].bits = 2;
  EXPECT_EQ(d::launch_quantize_batch({}, nullptr, nullptr, nullptr), cudaSuccess);
  d::QuantizeJob bad_bits = job;
  bad_bits.sets[0].bits = 3;
  EXPECT_EQ(d::launch_quantize_batch({job, bad_bits}, nullptr, nullptr, nullptr), cudaErrorInvalidValue);
  d::QuantizeJob other_heads = job;
  other_heads.n_kv = 2, other_heads.stride = 128;
  EXPECT_EQ(d::launch_quantize_batch({job, other_heads}, nullptr, nullptr, nullptr), cudaErrorInvalidValue);
  d::QuantizeJob misaligned = job;
  misaligned.k = rows + 1;
  EXPECT_EQ(d::launch_quantize_batch({job, misaligned}, nullptr, nullptr, nullptr), cudaErrorMisalignedAddress);
}

}  // namespace
