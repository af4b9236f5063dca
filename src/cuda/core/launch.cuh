// Programmatic dependent launch (PDL, Hopper and later; CUDA programming guide,
// "Programmatic Dependent Launch and Synchronization"). A decode step is a chain of
// ~12 dependent kernels per layer, most of them a few microseconds long, so the gap
// between one kernel's last CTA and the next kernel's first (launch processing, CTA
// rasterization, the kernel's own prologue) is a visible share of the step. A kernel
// launched by launch_pdl may start while the kernel before it in the stream is still
// running; it must call wait_for_prior_grids() before it touches memory that kernel
// writes or reads (every kernel here calls it first thing), and it calls
// allow_dependent_launch() so that the kernel after it may be scheduled early in turn.
// Both are no-ops when the kernel was launched without the attribute (older GPUs, and
// the kernel families ZC_PDL leaves out: programmatic_launch_enabled in device.h), so
// the kernels are correct either way; stream capture keeps the attribute as a
// programmatic edge of the CUDA graph. Include only from .cu files.
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "cuda/core/device.h"  // programmatic_launch_enabled

namespace zc::cuda::detail {

// griddepcontrol.wait: returns once every grid this one depends on has completed and
// its memory operations are visible.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// griddepcontrol.launch_dependents: this CTA no longer holds back the launch of the
// next grid (which still waits for this one to complete before reading its output).
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic stream
// serialization attribute when programmatic_launch_enabled(family).
template <typename... Params, typename... Args>
cudaError_t launch_pdl(PdlKernel family, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = programmatic_launch_enabled(family) ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace zc::cuda::detail
