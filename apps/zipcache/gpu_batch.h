// `serve --parallel N --device cuda`: engine::BatchDecoder over one GpuRunner of N
// sequences (continuous batching on the GPU). Only in builds with the CUDA backend.
#pragma once
#include <memory>

#include "engine/batch_decoder.h"

namespace zc::cuda {
class GpuRunner;
class KvPool;
}  // namespace zc::cuda

namespace zc::app {

// Takes the runner (its sequences are the slots) and keeps `pool` (the runner's) in view
// for admission: a prompt is refused with zc::OutOfMemory while the running sequences'
// remaining tokens need the pool's free bytes.
std::unique_ptr<engine::BatchDecoder> make_gpu_batch(std::unique_ptr<cuda::GpuRunner> runner,
                                                     const cuda::KvPool& pool, int context, int vocab);

}  // namespace zc::app
