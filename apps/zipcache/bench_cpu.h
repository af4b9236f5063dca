// `zipcache bench --device cpu`: the same measurements as on the GPU (bench_gpu.h) for
// the CPU path (model::Model, fp32, OpenBLAS, the kv::Cache policies).
#pragma once
#include "bench_gpu.h"
#include "kv/method.h"
#include "model/forward.h"

namespace zc::app {

// batch sequences of `context` random prompt tokens, prefilled one after another,
// then `gen` decode steps of the whole batch (one forward call per step).
BenchResult run_cpu_bench(const model::Model& model, const kv::MethodConfig& method, const BenchConfig& config);

}  // namespace zc::app
