// Phase timestamps of the tensor-core decode kernel (decode_mma.cuh), for the study of
// where a small batch's time goes (issue 4; docs/benchmarks.md, session 14). Compiled
// only with -DZC_DECODE_TRACE=ON (CMake option); every other build sees an empty macro.
// Lane 0 of each warp stores clock64() (or %globaltimer, in ns) at the kernel's phases
// into slot s of its warp's record; zc_gpu_bench downloads and summarizes them
// (decode_trace_download in decode_attention.h).
#pragma once
#include <cstdint>

namespace zc::cuda::detail {

// Records: one per warp of a launch, (blockIdx.y * gridDim.x + blockIdx.x) * 4 + warp.
constexpr int kTraceWarps = 1 << 15, kTraceSlots = 12;
// Slots: 0 %globaltimer at entry, 1 clock at entry, 2 after the prologue's barrier,
// 3 page 0 landed (its copies waited for), 4 page 0's fold done, 5 page 0 computed, 6 loop done, 7 after the
// barrier before the finish, 8 at the end, 9 %globaltimer at the end, 10 the warp's
// pages, 11 the SM.

#ifdef ZC_DECODE_TRACE
__device__ unsigned long long g_decode_trace[kTraceWarps * kTraceSlots];

__device__ __forceinline__ unsigned long long trace_globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned trace_smid() {
  unsigned s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  return s;
}
__device__ __forceinline__ void trace_store(int slot, unsigned long long value) {
  const unsigned warp_id = (blockIdx.y * gridDim.x + blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if ((threadIdx.x & 31) == 0 && warp_id < kTraceWarps) g_decode_trace[warp_id * kTraceSlots + slot] = value;
}
#define ZC_TRACE_VALUE(slot, value) ::zc::cuda::detail::trace_store(slot, static_cast<unsigned long long>(value))
#define ZC_TRACE_CLOCK(slot) ZC_TRACE_VALUE(slot, clock64())
#define ZC_TRACE_CLOCK_IF(cond, slot) \
  do {                                \
    if (cond) ZC_TRACE_CLOCK(slot);   \
  } while (0)
#define ZC_TRACE_START()                                       \
  do {                                                         \
    ZC_TRACE_VALUE(0, ::zc::cuda::detail::trace_globaltimer()); \
    ZC_TRACE_VALUE(11, ::zc::cuda::detail::trace_smid());       \
    ZC_TRACE_CLOCK(1);                                         \
  } while (0)
#define ZC_TRACE_END()                                         \
  do {                                                         \
    ZC_TRACE_CLOCK(8);                                         \
    ZC_TRACE_VALUE(9, ::zc::cuda::detail::trace_globaltimer()); \
  } while (0)
#else
#define ZC_TRACE_VALUE(slot, value) ((void)0)
#define ZC_TRACE_CLOCK(slot) ((void)0)
#define ZC_TRACE_CLOCK_IF(cond, slot) ((void)0)
#define ZC_TRACE_START() ((void)0)
#define ZC_TRACE_END() ((void)0)
#endif

}  // namespace zc::cuda::detail
