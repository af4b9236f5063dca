// The top-r split of SPEC.md section 4 on the GPU, for many score lists at once (one
// per KV head, or per (sequence, KV head)): the same split as saliency::top_r.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda {

// scores: device float [lists][n] (row-major); count: how many tokens of each list are
// salient, chosen on the host (round(ratio * n) as saliency::top_r rounds), 0..n.
// salient_idx: device int32 [lists][count], the ascending token indices of each list's
// `count` highest scores; regular_idx: device int32 [lists][n - count], the rest,
// ascending. Equal scores go to the LATER token (saliency::top_r); -0 and +0 are equal.
//
// NaN scores are an error, as in saliency::top_r: the kernel orders them below every
// other value (so the outputs stay well formed) and records the first (list, token)
// holding one in a device flag; the wrapper then synchronizes `stream` once, reads the
// flag and throws zc::Error naming them. That synchronization is the only one; the
// outputs are complete when the call returns. Bad arguments throw before any launch.
void top_r_split(const float* scores, int lists, int n, int count, int32_t* salient_idx,
                 int32_t* regular_idx, cudaStream_t stream = nullptr);

// The same without synchronizing: the first NaN's list * n + token is folded into
// *nan_flag (device; atomicMin, so the caller sets it to ~0ull once and may share it
// across calls) and the caller reads it when it next synchronizes anyway. A per-layer
// synchronization here kept the host from queueing ahead of a ZipCache prefill (the
// GPU idled between layers while the host planned the next one).
void top_r_split_deferred(const float* scores, int lists, int n, int count, int32_t* salient_idx,
                          int32_t* regular_idx, unsigned long long* nan_flag, cudaStream_t stream = nullptr);

}  // namespace zc::cuda
