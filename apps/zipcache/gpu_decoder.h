// `zipcache generate --device cuda`: the generation loop of engine::generate_with over
// the GPU runner (cuda/engine/gpu_runner.h). Only in builds with the CUDA backend.
#pragma once
#include <memory>

#include "engine/generator.h"
#include "kv/method.h"
#include "model/forward.h"

namespace zc::app {

// The model's weights on the GPU and a KV block pool, shared by the decoders made
// from it (one per --kv method, one after the other).
class GpuSession {
 public:
  // kv_mem_bytes 0: enough for an fp16 cache of `context` tokens (at most 90% of the
  // free memory). Throws zc::Error when there is no GPU or the build has no CUDA.
  GpuSession(const model::Model& model, int context, size_t kv_mem_bytes);
  ~GpuSession();
  std::unique_ptr<engine::Decoder> decoder(const kv::MethodConfig& method);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zc::app
