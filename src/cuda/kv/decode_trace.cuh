// Phase timestamps of the tensor-core decode kernel (decode_mma.cuh), for the study of
// where a small batch's time goes (issue 4; docs/benchmarks.md, session 14). Recorded
// only with -DZC_DECODE_TRACE=ON (CMake option); every other build sees empty macros.
// Lane 0 of each warp stores clock64() (or %globaltimer, in ns) at the kernel's phases
// into its warp's record; zc_gpu_bench downloads (decode_trace_download in
// decode_attention.h) and summarizes them. The slots below are plain C++, shared by
// the kernel and the benchmark.
#pragma once
#include <cstdint>

namespace zc::cuda {

// A warp's record: kTraceSlots values, in this order.
enum DecodeTraceSlot : int {
  kTraceEntryNs,      // %globaltimer at entry
  kTraceEntry,        // clock64 at entry
  kTracePrologue,     // after the prologue's barrier (query, first descriptors)
  kTracePage0Landed,  // page 0's copies waited for
  kTracePage0Folded,  // page 0's fold (or fold-table lookup) done
  kTracePage0Done,    // page 0 computed
  kTraceLoopDone,     // every page computed
  kTraceBarrier,      // after the barrier before the finish
  kTraceEnd,          // clock64 at the end
  kTraceEndNs,        // %globaltimer at the end
  kTracePages,        // the warp's pages
  kTraceSm,           // the SM
  kTraceSlots
};
// Records: one per warp of a launch, (blockIdx.y * gridDim.x + blockIdx.x) * 4 + warp.
inline constexpr int kTraceWarps = 1 << 15;

}  // namespace zc::cuda

#if defined(ZC_DECODE_TRACE) && defined(__CUDACC__)
namespace zc::cuda::detail {

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

}  // namespace zc::cuda::detail

#define ZC_TRACE_VALUE(slot, value) ::zc::cuda::detail::trace_store(slot, static_cast<unsigned long long>(value))
#define ZC_TRACE_CLOCK(slot) ZC_TRACE_VALUE(slot, clock64())
#define ZC_TRACE_CLOCK_IF(cond, slot) \
  do {                                \
    if (cond) ZC_TRACE_CLOCK(slot);   \
  } while (0)
#define ZC_TRACE_START()                                                                \
  do {                                                                                  \
    ZC_TRACE_VALUE(::zc::cuda::kTraceEntryNs, ::zc::cuda::detail::trace_globaltimer()); \
    ZC_TRACE_VALUE(::zc::cuda::kTraceSm, ::zc::cuda::detail::trace_smid());             \
    ZC_TRACE_CLOCK(::zc::cuda::kTraceEntry);                                            \
  } while (0)
#define ZC_TRACE_END()                                                                \
  do {                                                                                \
    ZC_TRACE_CLOCK(::zc::cuda::kTraceEnd);                                            \
    ZC_TRACE_VALUE(::zc::cuda::kTraceEndNs, ::zc::cuda::detail::trace_globaltimer()); \
  } while (0)
#else
#define ZC_TRACE_VALUE(slot, value) ((void)0)
#define ZC_TRACE_CLOCK(slot) ((void)0)
#define ZC_TRACE_CLOCK_IF(cond, slot) ((void)0)
#define ZC_TRACE_START() ((void)0)
#define ZC_TRACE_END() ((void)0)
#endif
