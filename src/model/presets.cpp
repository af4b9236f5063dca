// Configs of well-known checkpoints (presets.h), the values of their config.json.
#include "model/presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace zc::model {

namespace {

ModelConfig llama_like(int hidden, int inter, int heads, int kv, int layers, int vocab, double theta,
                       int max_pos, double eps) {
  ModelConfig c;
  c.arch = Arch::Llama;
  c.hidden_size = hidden, c.intermediate_size = inter, c.n_heads = heads, c.n_kv_heads = kv;
  c.head_dim = hidden / heads, c.n_layers = layers, c.vocab_size = vocab, c.rope_theta = theta;
  c.max_position_embeddings = max_pos, c.rms_norm_eps = eps;
  c.torch_dtype = "bfloat16";
  return c;
}

}  // namespace

std::vector<std::string> preset_names() { return {"llama3-8b", "llama2-7b", "mistral-7b", "qwen2.5-7b"}; }

ModelConfig preset_config(const std::string& name) {
  if (name == "llama3-8b") {
    ModelConfig c = llama_like(4096, 14336, 32, 8, 32, 128256, 500000.0, 131072, 1e-5);
    c.rope.type = RopeType::Llama3;
    c.rope.factor = 8.0, c.rope.low_freq_factor = 1.0, c.rope.high_freq_factor = 4.0;
    c.rope.original_max_position_embeddings = 8192;
    c.bos_token_id = 128000, c.eos_token_ids = {128001};
    return c;
  }
  if (name == "llama2-7b") {
    ModelConfig c = llama_like(4096, 11008, 32, 32, 32, 32000, 10000.0, 4096, 1e-5);
    c.bos_token_id = 1, c.eos_token_ids = {2};
    return c;
  }
  if (name == "mistral-7b") {
    ModelConfig c = llama_like(4096, 14336, 32, 8, 32, 32768, 1000000.0, 32768, 1e-5);
    c.arch = Arch::Mistral;
    c.bos_token_id = 1, c.eos_token_ids = {2};
    return c;
  }
  if (name == "qwen2.5-7b") {
    ModelConfig c = llama_like(3584, 18944, 28, 4, 28, 152064, 1000000.0, 131072, 1e-6);
    c.arch = Arch::Qwen2;
    c.qkv_bias = true;
    c.bos_token_id = 151643, c.eos_token_ids = {151643};
    return c;
  }
  fail("unknown synthetic model '{}' (known: {})", name, fmt::join(preset_names(), ", "));
}

}  // namespace zc::model
