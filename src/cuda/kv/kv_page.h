// The GPU layout of a KV cache for decode attention (issue 4; SPEC.md section 4,
// "Attention over the cache"). Shared by host code and kernels: plain C++ only.
//
// A (sequence, KV head) pair owns a list of PAGES of up to 32 tokens. A page holds the
// keys and values of its tokens in one of three forms, chosen per page:
//  - fp16 (kbits = vbits = 16): the fp16 streaming window / an fp16 cache;
//  - quantized keys (kbits 2 or 4, channelwise: per-channel fp16 lo/step shared by all
//    pages of the block the page came from) with quantized values (vbits 2 or 4;
//    tokenwise, CSTQ or groupwise: per-token fp16 lo/step per channel group, plus
//    per-block fp16 channel scales for CSTQ).
// Pages of one pair may mix forms (ZipCache: 4-bit salient pages, 2-bit regular pages
// and fp16 window pages), all merged in one softmax; order does not matter.
//
// Every array lives in one pool; KvPage fields k, v, kp, vp, vs are offsets in 16-byte
// units from the pool base, so every access is an aligned 16-byte vector.
//
// Keys, at k: (d * kbits / 128) x 32 vectors of 16 bytes, vector (cc, t) at index
//   cc * 32 + t holds channels [cc * CPV, (cc + 1) * CPV) of token t, CPV = 128 / kbits,
//   element i of the vector at bits [i * kbits, (i + 1) * kbits) of the 128 bits read
//   as four little-endian 32-bit words (word 0 first). fp16: 8 halves, channel order.
//   A warp reads 32 consecutive vectors (512 bytes): lane = token.
// Values, at v. fp16: 8 x (d / 2) vectors, vector (k, p) at index k * (d / 2) + p holds
//   channels 2p (halves 0-3) and 2p+1 (halves 4-7) of tokens 4k .. 4k + 3.
//   Codes (vbits 2 or 4): d * vbits words in the order the tensor-core decode kernel
//   takes them (decode_mma_page.cuh): channel pair p = 8m + g (M-tile m) and the eight
//   tokens 8 t4 .. 8 t4 + 7 belong to lane 4g + t4, whose words for its M-tiles lie in
//   consecutive 16-byte vectors (m / 4 or m / 2) x 32 + lane, so a lane reads them with
//   one wide load per 4 (2 bits) or 2 (4 bits) M-tiles and a warp's loads are
//   contiguous. 2 bits: word m % 4 holds the lane's 16 codes of M-tile m; 4 bits: words
//   2 (m % 2) and 2 (m % 2) + 1 hold channel 2p's and 2p+1's 8 codes, token 8 t4 + u at
//   bit 4u. value_code_word / value_code_bit below give every code's place.
// Key parameters, at kp (quantized keys): lo[d] then step[d], fp16 bits, per block.
// Value parameters, at vp (quantized values): lo[ng][32] then step[ng][32], fp16 bits,
//   ng = d / vgroup channel groups (1 for tokenwise and CSTQ), per page.
// Channel scales, at vs (CSTQ): scale[d], fp16 bits, per block.
// Tokens ntok..31 of a page are padding: zero codes, zero parameters, +0.0 fp16 values
// (the kernel also masks them).
// Head dim d: 64, 128 or 256.
#pragma once
#include <cstdint>

namespace zc::cuda {

inline constexpr int kPageTokens = 32;

#if defined(__CUDACC__)
#define ZC_PAGE_FN __host__ __device__ constexpr
#else
#define ZC_PAGE_FN constexpr
#endif

// The word (32 bits, from the page's value codes at v) holding the vbits-bit code of
// token t (0..31), channel c (see above).
ZC_PAGE_FN int value_code_word(int vbits, int t, int c) {
  const int m = c / 16, lane = 4 * ((c / 2) % 8) + t / 8;
  return vbits == 2 ? ((m / 4) * 32 + lane) * 4 + m % 4 : ((m / 2) * 32 + lane) * 4 + 2 * (m % 2) + c % 2;
}
// Its bit offset in the word. 4 bits: token 8 t4 + u at bit 4u. 2 bits: the kernel takes
// the word rotated left by r = 8 (c % 2) + 4 (a / 2) (a = u % 4) and finds the code of
// token u (u < 4) / u + 4 at bit 6 + 2 (a % 2) / 22 + 2 (a % 2), so the code sits r
// bits lower (mod 32): each rotation yields two fp16 fragment registers by a mask.
ZC_PAGE_FN int value_code_bit(int vbits, int t, int c) {
  const int u = t % 8, a = u % 4, i = u / 4;
  return vbits == 4 ? 4 * u : (6 + 2 * (a % 2) + 16 * i - 8 * (c % 2) - 4 * (a / 2) + 32) % 32;
}

enum class PageValues : uint8_t { Fp16 = 0, Tokenwise = 1, Cstq = 2, Groupwise = 3 };

struct alignas(16) KvPage {
  uint32_t k = 0, v = 0, kp = 0, vp = 0, vs = 0;  // 16-byte units from the pool base
  uint8_t kbits = 16, vbits = 16;
  PageValues values = PageValues::Fp16;
  uint8_t ntok = 0;        // valid tokens, 1..32
  uint16_t vgroup = 0;     // channels per value group (= d unless groupwise)
  uint16_t allocated = 0;  // host bookkeeping: 1 = the cache's own page (reset() frees these);
                           // decode_mma.cuh keeps the page's stage plan here in its copy
  uint32_t scratch = 0;    // 0 in memory; decode_mma.cuh keeps the page's kind index here in
                           // its shared-memory copy
};
static_assert(sizeof(KvPage) == 32, "KvPage is two 16-byte vectors");

}  // namespace zc::cuda
