#include "model/weights.h"

#include <fmt/ranges.h>

#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

namespace zc::model {

namespace {

class Loader {
 public:
  Loader(const io::WeightStore& store, std::string where)
      : store_(store), where_(std::move(where)) {}

  std::vector<float> get(const std::string& name, std::vector<int64_t> shape) const {
    if (!store_.has(name)) {
      fail("{}: tensor '{}' is missing (expected shape [{}])", where_, name,
           fmt::join(shape, ", "));
    }
    const io::TensorInfo& info = store_.info(name);
    if (info.shape != shape) {
      fail("{}: tensor '{}' has shape [{}], expected [{}]", where_, name,
           fmt::join(info.shape, ", "), fmt::join(shape, ", "));
    }
    std::vector<float> v = store_.to_float(name);
    ZC_CHECK(v.size() == info.numel());
    return v;
  }

 private:
  const io::WeightStore& store_;
  std::string where_;
};

}  // namespace

ModelWeights load_weights(const io::WeightStore& store, const ModelConfig& c,
                          const std::string& where) {
  const Loader ld(store, where);
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_kv_heads} * c.head_dim;

  ModelWeights w;
  w.embed = ld.get("model.embed_tokens.weight", {vocab, hidden});
  w.norm = ld.get("model.norm.weight", {hidden});
  // Tied models use the embedding as the output matrix (HF ties them even when a
  // checkpoint also stores lm_head.weight).
  if (!c.tie_word_embeddings) w.lm_head = ld.get("lm_head.weight", {vocab, hidden});

  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    L.input_norm = ld.get(p + "input_layernorm.weight", {hidden});
    L.post_norm = ld.get(p + "post_attention_layernorm.weight", {hidden});
    L.wq = ld.get(p + "self_attn.q_proj.weight", {q_dim, hidden});
    L.wk = ld.get(p + "self_attn.k_proj.weight", {kv_dim, hidden});
    L.wv = ld.get(p + "self_attn.v_proj.weight", {kv_dim, hidden});
    L.wo = ld.get(p + "self_attn.o_proj.weight", {hidden, q_dim});
    if (c.qkv_bias) {
      L.bq = ld.get(p + "self_attn.q_proj.bias", {q_dim});
      L.bk = ld.get(p + "self_attn.k_proj.bias", {kv_dim});
      L.bv = ld.get(p + "self_attn.v_proj.bias", {kv_dim});
    }
    if (c.o_bias) L.bo = ld.get(p + "self_attn.o_proj.bias", {hidden});
    if (c.qk_norm) {
      L.q_norm = ld.get(p + "self_attn.q_norm.weight", {c.head_dim});
      L.k_norm = ld.get(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    L.w_gate = ld.get(p + "mlp.gate_proj.weight", {inter, hidden});
    L.w_up = ld.get(p + "mlp.up_proj.weight", {inter, hidden});
    L.w_down = ld.get(p + "mlp.down_proj.weight", {hidden, inter});
    if (c.mlp_bias) {
      L.b_gate = ld.get(p + "mlp.gate_proj.bias", {inter});
      L.b_up = ld.get(p + "mlp.up_proj.bias", {inter});
      L.b_down = ld.get(p + "mlp.down_proj.bias", {hidden});
    }
  }
  return w;
}

}  // namespace zc::model
