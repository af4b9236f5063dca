// Uploading or synthesizing a model's weights on the GPU (gpu_model.h).
#include "cuda/engine/gpu_model.h"

#include "core/error.h"
#include "core/half.h"
#include "cuda/engine/synthetic_fill.h"
#include "model/rope.h"

namespace zc::cuda {

namespace {

void upload_bf16(DeviceBuffer<uint16_t>& dst, std::initializer_list<const std::vector<float>*> parts) {
  size_t n = 0;
  for (const auto* p : parts) n += p->size();
  std::vector<uint16_t> host(n);
  size_t at = 0;
  for (const auto* p : parts) {
    for (float f : *p) host[at++] = float_to_bf16(f);
  }
  dst.upload(host);
}

void upload_f32(DeviceBuffer<float>& dst, std::initializer_list<const std::vector<float>*> parts) {
  std::vector<float> host;
  for (const auto* p : parts) host.insert(host.end(), p->begin(), p->end());
  if (!host.empty()) dst.upload(host);
}

template <typename T>
size_t bytes_of(const DeviceBuffer<T>& b) {
  return b.bytes();
}

}  // namespace

GpuModel::GpuModel(const model::ModelConfig& config) : config_(config) {
  if (config.head_dim % 2 != 0) fail("gpu model: head_dim {} must be even", config.head_dim);
  inv_freq_.upload(model::rope_inv_freq(config));
  layers_.resize(size_t(config.n_layers));
}

GpuModel GpuModel::upload(const model::ModelConfig& config, const model::ModelWeights& w) {
  GpuModel m(config);
  upload_bf16(m.embed_, {&w.embed});
  if (!w.lm_head.empty()) upload_bf16(m.lm_head_, {&w.lm_head});
  upload_f32(m.norm_, {&w.norm});
  for (int i = 0; i < config.n_layers; ++i) {
    const model::LayerWeights& s = w.layers[size_t(i)];
    GpuLayerWeights& d = m.layers_[size_t(i)];
    upload_bf16(d.wqkv, {&s.wq, &s.wk, &s.wv});
    upload_bf16(d.wo, {&s.wo});
    upload_bf16(d.wgu, {&s.w_gate, &s.w_up});
    upload_bf16(d.wd, {&s.w_down});
    if (!s.bq.empty()) upload_f32(d.bqkv, {&s.bq, &s.bk, &s.bv});
    if (!s.bo.empty()) upload_f32(d.bo, {&s.bo});
    if (!s.b_gate.empty()) upload_f32(d.bgu, {&s.b_gate, &s.b_up});
    if (!s.b_down.empty()) upload_f32(d.bd, {&s.b_down});
    upload_f32(d.input_norm, {&s.input_norm});
    upload_f32(d.post_norm, {&s.post_norm});
    if (!s.q_norm.empty()) upload_f32(d.q_norm, {&s.q_norm});
    if (!s.k_norm.empty()) upload_f32(d.k_norm, {&s.k_norm});
  }
  return m;
}

GpuModel GpuModel::synthetic(const model::ModelConfig& c, uint64_t seed) {
  GpuModel m(c);
  const size_t H = size_t(c.hidden_size), I = size_t(c.intermediate_size), d = size_t(c.head_dim);
  const size_t q = size_t(c.n_heads) * d, kv = size_t(c.n_kv_heads) * d;
  uint64_t salt = seed * 0x9e3779b97f4a7c15ull + 1;
  const auto rnd = [&](DeviceBuffer<uint16_t>& b, size_t n) {
    b.resize(n);
    check(detail::launch_fill_bf16(b.get(), n, 0.02f, salt++, nullptr), "synthetic weights");
  };
  const auto ones = [&](DeviceBuffer<float>& b, size_t n, float value) {
    b.resize(n);
    check(detail::launch_fill_f32(b.get(), n, value, nullptr), "synthetic norms");
  };
  rnd(m.embed_, size_t(c.vocab_size) * H);
  if (!c.tie_word_embeddings) rnd(m.lm_head_, size_t(c.vocab_size) * H);
  ones(m.norm_, H, 1.0f);
  for (auto& l : m.layers_) {
    rnd(l.wqkv, (q + 2 * kv) * H);
    rnd(l.wo, H * q);
    rnd(l.wgu, 2 * I * H);
    rnd(l.wd, H * I);
    if (c.qkv_bias) ones(l.bqkv, q + 2 * kv, 0.0f);
    if (c.o_bias) ones(l.bo, H, 0.0f);
    if (c.mlp_bias) ones(l.bgu, 2 * I, 0.0f), ones(l.bd, H, 0.0f);
    ones(l.input_norm, H, 1.0f);
    ones(l.post_norm, H, 1.0f);
    if (c.qk_norm) ones(l.q_norm, d, 1.0f), ones(l.k_norm, d, 1.0f);
  }
  check(cudaDeviceSynchronize(), "synthetic weights");
  return m;
}

size_t GpuModel::weight_bytes() const {
  size_t n = embed_.bytes() + lm_head_.bytes() + norm_.bytes();
  for (const auto& l : layers_) {
    n += l.wqkv.bytes() + l.wo.bytes() + l.wgu.bytes() + l.wd.bytes() + l.bqkv.bytes() + l.bo.bytes() + l.bgu.bytes() +
         l.bd.bytes() + l.input_norm.bytes() + l.post_norm.bytes() + l.q_norm.bytes() + l.k_norm.bytes();
  }
  return n;
}

}  // namespace zc::cuda
