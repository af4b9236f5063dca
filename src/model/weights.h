// Every weight of a supported model, converted to fp32 through io::WeightStore
// (single file or sharded safetensors). Names and shapes follow the HF checkpoints:
//   model.embed_tokens.weight [vocab, hidden]
//   model.layers.N.input_layernorm.weight, post_attention_layernorm.weight [hidden]
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight [out, in] (+ .bias where the config says)
//   model.layers.N.self_attn.{q,k}_norm.weight [head_dim] (Qwen3)
//   model.layers.N.mlp.{gate,up,down}_proj.weight (+ .bias with Llama's mlp_bias)
//   model.norm.weight [hidden], lm_head.weight [vocab, hidden] unless tied.
// A missing tensor or a wrong shape is a zc::Error naming the tensor and both shapes.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace zc::io {
class WeightStore;
}

namespace zc::model {

struct LayerWeights {
  std::vector<float> input_norm, post_norm;  // [hidden]
  std::vector<float> wq, wk, wv, wo;         // [out, in]
  std::vector<float> bq, bk, bv, bo;         // empty when the layer has no bias
  std::vector<float> q_norm, k_norm;         // [head_dim], Qwen3 only
  std::vector<float> w_gate, w_up, w_down;   // [inter, hidden], [inter, hidden], [hidden, inter]
  std::vector<float> b_gate, b_up, b_down;   // empty unless mlp_bias
};

struct ModelWeights {
  std::vector<float> embed;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> norm;     // [hidden]
  std::vector<float> lm_head;  // [vocab, hidden]; empty when tied to embed

  const float* output_matrix() const { return lm_head.empty() ? embed.data() : lm_head.data(); }
};

// `where` prefixes errors (the model folder).
ModelWeights load_weights(const io::WeightStore& store, const ModelConfig& config,
                          const std::string& where);

}  // namespace zc::model
