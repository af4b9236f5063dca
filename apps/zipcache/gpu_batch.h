// `serve --parallel N --device cuda`: engine::BatchDecoder over one GpuRunner of N
// sequences (continuous batching on the GPU). Only in builds with the CUDA backend.
#pragma once
#include <memory>

#include "engine/batch_decoder.h"

namespace zc::cuda {
class GpuRunner;
class KvPool;
struct GpuDraw;
}  // namespace zc::cuda

namespace zc::app {

// Takes the runner (its sequences are the slots) and keeps `pool` (the runner's) in view
// for admission: a prompt is refused with zc::OutOfMemory while the running sequences'
// remaining tokens need the pool's free bytes.
std::unique_ptr<engine::BatchDecoder> make_gpu_batch(std::unique_ptr<cuda::GpuRunner> runner,
                                                     const cuda::KvPool& pool, int context, int vocab);

// A kDraw pick's draw for the GPU sampler, of the runner's sequence `row` (the batch's
// slots and the single decoder's sequence 0).
cuda::GpuDraw gpu_draw(int row, const engine::DrawSpec& d);

}  // namespace zc::app
