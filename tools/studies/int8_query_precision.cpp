// Precision study for a possible int8 key path of the decode kernel (docs/benchmarks.md,
// "Next"): decode attention with the folded query q_c * step_c * scale * log2(e) rounded
// to a 16-bit integer grid (two int8 slices, per-head scale 32000 / max |fq|), and to
// plain fp16 (FlashAttention-style, no residual), against double precision, on the
// inputs of tests/cuda/decode_attention_test.cpp (keys N(0,1) with x4 outlier channels,
// one channelwise 2- or 4-bit block, values N(0,1), d = 128). Prints the worst error
// relative to max(1, max |out|), the measure that test holds to 1e-4.
//   g++ -O2 -std=c++17 tools/studies/int8_query_precision.cpp -o /tmp/iq && /tmp/iq
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include <algorithm>
int main() {
  std::mt19937 gen(7);
  std::normal_distribution<double> nd(0, 1);
  const int d = 128;
  for (int bits : {2, 4}) {
    for (int L : {32, 300, 4096}) {
      double worst = 0, worst16 = 0;
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<double> k(L * d), v(L * d), q(d);
        for (int t = 0; t < L; ++t)
          for (int c = 0; c < d; ++c) k[t * d + c] = nd(gen) * (c % 11 == 3 ? 4 : 1), v[t * d + c] = nd(gen);
        for (auto& x : q) x = nd(gen);
        // channelwise quantization over the block
        std::vector<double> lo(d), st(d);
        std::vector<int> code(L * d);
        const int levels = (1 << bits) - 1;
        for (int c = 0; c < d; ++c) {
          double mn = 1e30, mx = -1e30;
          for (int t = 0; t < L; ++t) mn = std::min(mn, k[t * d + c]), mx = std::max(mx, k[t * d + c]);
          lo[c] = (float)mn; st[c] = (float)((mx - mn) / levels);
          for (int t = 0; t < L; ++t) code[t * d + c] = std::clamp((int)std::lround((k[t * d + c] - lo[c]) / st[c]), 0, levels);
        }
        const double scale = 1.0 / std::sqrt(d), l2e = 1.4426950408889634;
        // reference scores (log2 units)
        std::vector<double> sref(L), sint(L), s16(L);
        double bias = 0; for (int c = 0; c < d; ++c) bias += q[c] * lo[c];
        bias *= scale * l2e;
        std::vector<double> fq(d); double amax = 0;
        for (int c = 0; c < d; ++c) fq[c] = (float)(q[c] * st[c] * scale * l2e), amax = std::max(amax, std::fabs(fq[c]));
        const double up = 32000.0 / amax;
        std::vector<double> xi(d), xh(d);
        for (int c = 0; c < d; ++c) xi[c] = std::rint(fq[c] * up) / up;
        // fp16 only (no residual), for comparison: FlashAttention-style
        for (int c = 0; c < d; ++c) {
          double f = fq[c]; int e; std::frexp(f, &e); double ulp = std::ldexp(1.0, e - 11);
          xh[c] = std::rint(f / ulp) * ulp;
        }
        for (int t = 0; t < L; ++t) {
          double a = 0, b = 0, h = 0;
          for (int c = 0; c < d; ++c) { a += q[c] * (lo[c] + st[c] * code[t * d + c]); b += xi[c] * code[t * d + c]; h += xh[c] * code[t * d + c]; }
          sref[t] = a * scale * l2e; sint[t] = b + bias; s16[t] = h + bias;
        }
        auto out = [&](const std::vector<double>& s, std::vector<double>& o) {
          double m = *std::max_element(s.begin(), s.end()), l = 0;
          o.assign(d, 0);
          for (int t = 0; t < L; ++t) { double p = std::exp2(s[t] - m); l += p; for (int c = 0; c < d; ++c) o[c] += p * v[t * d + c]; }
          for (auto& x : o) x /= l;
        };
        std::vector<double> oref, oint, o16;
        out(sref, oref); out(sint, oint); out(s16, o16);
        double mref = 0, e = 0, e16 = 0;
        for (int c = 0; c < d; ++c) mref = std::max(mref, std::fabs(oref[c])), e = std::max(e, std::fabs(oint[c] - oref[c])), e16 = std::max(e16, std::fabs(o16[c] - oref[c]));
        worst = std::max(worst, e / std::max(1.0, mref));
        worst16 = std::max(worst16, e16 / std::max(1.0, mref));
      }
      std::printf("bits %d L %5d: int16 query worst %.2e, fp16 query worst %.2e (tolerance 1e-4)\n", bits, L, worst, worst16);
    }
  }
}
