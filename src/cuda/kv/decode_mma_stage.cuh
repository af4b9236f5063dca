// The shared-memory stages of the tensor-core decode kernel (decode_mma.cuh; issue 4):
// which pages go through a stage, their kind index and copy plan (worked out when a
// descriptor enters a warp's ring), the cp.async copies of a page, and where a page's
// codes are read from (its stage or the pool).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/core/ptx.cuh"
#include "cuda/kv/decode_mma_page.cuh"
#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {
namespace mma {

// Value parameter groups of a page, D / vgroup (1..8), without an integer division
// (a subroutine call on the GPU): the float quotient of two small integers that divide
// exactly rounds back to the integer.
template <int D>
__device__ __forceinline__ int value_groups(const KvPage& pg) {
  return __float2int_rn(__fdividef(float(D), float(pg.vgroup)));
}

// A stage holds, in 16-byte vectors: keys [0, K) (at most 4 bits: D / 32 columns of
// kStagedKeyRows rows, see key_slot), values [K, K + D), value parameters [K + D,
// K + D + 8 groups), and with stage_kp (DecodeParams) the key parameters (lo[D],
// step[D] in fp16) after them (staged_kp_vector). CSTQ's channel scales are not staged:
// they apply once per block (flush reads them from the pool), so a copy per page and
// 256 bytes per stage were waste.
__host__ __device__ constexpr int staged_key_vectors(int d) { return d / 32 * kStagedKeyRows; }
__host__ __device__ inline int staged_kp_vector(int d, int groups) {
  return staged_key_vectors(d) + d + 8 * (groups > 1 ? groups : 1);
}
__host__ __device__ inline int stage_vectors(int d, int groups, bool stage_kp) {
  return staged_kp_vector(d, groups) + (stage_kp ? d / 4 : 0);
}

// A page goes through a stage when both its keys and values are codes of at most 4 bits.
__device__ __forceinline__ bool staged(const KvPage& pg) { return pg.kbits <= 4 && pg.vbits <= 4; }

// A page's kind as one index: (key bits, value bits, ValueKind) of a staged page in the
// order of the kernel's dispatch switch, kUnstaged for the rest (fp16 pages). Computed
// once per page by the lane that loads its descriptor into the warp's ring (kept in the
// copy's `scratch`), not per use: the page loop's dispatch was ~25 instructions of
// compares and selects per page (ncu's SASS counts).
constexpr uint32_t kUnstaged = 12;
__device__ __forceinline__ uint32_t page_kind(const KvPage& pg) {
  if (!staged(pg)) return kUnstaged;
  const int vk = pg.values == PageValues::Cstq ? kCstqValues : pg.values == PageValues::Groupwise ? kGroupedValues : kPlainValues;
  return (pg.kbits == 4 ? 6 : 0) + (pg.vbits == 4 ? 3 : 0) + vk;
}

// How a staged page is copied (stage_page), worked out with its kind when its
// descriptor enters the warp's ring (one lane per page, 32 pages at a time) and kept in
// the copy's `allocated` field (host bookkeeping, unused on the GPU): the value
// parameter vectors (8 per channel group) in bits 0-7, 4-bit keys in bit 8, 4-bit values
// in bit 9, its key parameters staged (stage_kp, staged pages only) in bit 10
// (kStagedKp), so that the fold tests that one bit. Taken apart per
// page in stage_page, these were ~15 instructions per page and a branch (the groupwise
// count needs a division).
constexpr uint16_t kStagedKp = 0x400;
template <int D>
__device__ __forceinline__ uint16_t stage_plan(const KvPage& pg, bool stage_kp) {
  const int np = pg.values == PageValues::Groupwise ? 8 * value_groups<D>(pg) : 8;
  return static_cast<uint16_t>(np | (pg.kbits == 4 ? 0x100 : 0) | (pg.vbits == 4 ? 0x200 : 0) |
                               (stage_kp && staged(pg) ? kStagedKp : 0));
}

// Issues the cp.async copies of a staged page into `st` (keys padded by key_slot);
// pg is the ring's copy, with its stage_plan.
// Straight-line per lane: every region is rows of 32 vectors (a lane copies one vector
// of each row), so the source is one 64-bit pointer plus constant offsets and the
// destination one shared address plus constant offsets. The loop form this replaced
// (a strided loop per region, with 64-bit address arithmetic per copy and a float
// division for the parameter groups) cost ~100 instructions per page.
// KP: the kernel may stage key parameters (decode_mma.cuh: GROUPS kernels only; the
// runtime test alone cost ZipCache's kernel 2.5%).
template <int D, bool KP>
__device__ __forceinline__ void stage_page(const uint8_t* pool, const KvPage& pg, uint4* st, int kp_vector, int lane) {
  const uint4* base = reinterpret_cast<const uint4*>(pool);
  constexpr int kMaxRows = D / 32;  // D * 4 bits / 128 vectors of 16 bytes, / 32 lanes
  const uint32_t plan = pg.allocated;  // stage_plan
  const bool wide_k = plan & 0x100, wide_v = plan & 0x200;  // 2-bit codes fill half the rows
  const uint4* ks = base + pg.k + lane;
  const uint32_t kd = ptx::smem_addr(st + key_slot(lane, true));
  // Rows a 2-bit page lacks are zero-filled copies that read nothing (cp.async's
  // src-size 0) rather than skipped ones: without the predicate the compiler keeps one
  // 64-bit source per region with constant offsets, where a predicated copy each cost
  // its own reload of the pool pointer and 64-bit address (ncu: ~180 instructions per
  // page outside the page math, a fifth of the total). The zeros land in the stage's
  // unused rows.
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) ptx::cp_async16(kd + 16 * kStagedKeyRows * r, ks + 32 * r, r < kMaxRows / 2 || wide_k);
  const uint4* vsrc = base + pg.v + lane;
  const uint32_t vd = ptx::smem_addr(st + staged_key_vectors(D) + lane);
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) ptx::cp_async16(vd + 512 * r, vsrc + 32 * r, r < kMaxRows / 2 || wide_v);
  // Value parameters: 8 vectors (lo[32], step[32] in fp16) per channel group.
  // At most D / 16 groups (supported()), so at most D / 64 rows.
  const int np = static_cast<int>(plan & 0xff);
  const uint4* ps = base + pg.vp + lane;
  const uint32_t pd = ptx::smem_addr(st + staged_key_vectors(D) + D + lane);
#pragma unroll
  for (int r = 0; r < D / 64; ++r) {
    if (lane + 32 * r < np) ptx::cp_async16(pd + 512 * r, ps + 32 * r);
  }
  // Key parameters (kStagedKp): D / 4 vectors at staged_kp_vector. A KIVI page is its
  // own key block, so its fold would otherwise wait a memory latency per page for them.
  if (KP && (plan & kStagedKp)) {
    const uint4* kps = base + pg.kp + lane;
    const uint32_t kd = ptx::smem_addr(st + kp_vector + lane);
#pragma unroll
    for (int r = 0; r < (D / 4 + 31) / 32; ++r) {
      if (lane + 32 * r < D / 4) ptx::cp_async16(kd + 512 * r, kps + 32 * r);
    }
  }
}

// Sources of a staged page (in its stage; no CSTQ scales there, see stage_vectors) and
// of an fp16 page (in the pool). Built in separate branches so that the compiler keeps
// shared-memory pointers as such (one PageSrc for both kinds made every load a generic
// one with 64-bit addressing).
__device__ __forceinline__ PageSrc staged_src(const uint4* st, int d, int key_lane) {
  const int kv = staged_key_vectors(d);
  return {st, st + kv, reinterpret_cast<const __half*>(st + kv + d), true, key_lane};
}
__device__ __forceinline__ PageSrc pool_src(const uint8_t* pool, const KvPage& pg) {
  const uint4* base = reinterpret_cast<const uint4*>(pool);
  return {base + pg.k, base + pg.v, reinterpret_cast<const __half*>(base + pg.vp), false, 0};
}

}  // namespace mma
}  // namespace zc::cuda::detail
