// A model's config.json (the Hugging Face hub format) reduced to what the forward
// pass needs. Supported: LlamaForCausalLM (Llama 2, Llama 3/3.1/3.2 with llama3 or
// linear RoPE scaling), MistralForCausalLM (sliding window), Qwen2ForCausalLM (q/k/v
// biases, tied embeddings), Qwen3ForCausalLM (per-head q/k RMSNorm, separate head_dim).
// Every problem is a zc::Error "<dir>/config.json: field 'X' ..." naming the field.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace zc::model {

enum class Arch { Llama, Mistral, Qwen2, Qwen3 };
std::string arch_name(Arch a);  // the HF class name, e.g. "LlamaForCausalLM"

// RoPE frequency scaling, as HF's ROPE_INIT_FUNCTIONS compute it.
enum class RopeType { Default, Linear, Llama3 };

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;                       // linear, llama3
  double low_freq_factor = 1.0;              // llama3
  double high_freq_factor = 4.0;             // llama3
  int original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  int hidden_size = 0;
  int intermediate_size = 0;
  int n_heads = 0;     // num_attention_heads
  int n_kv_heads = 0;  // num_key_value_heads (default: n_heads)
  int head_dim = 0;    // default: hidden_size / n_heads
  int n_layers = 0;    // num_hidden_layers
  int vocab_size = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope;
  int max_position_embeddings = 0;
  int sliding_window = 0;  // 0: full attention (Mistral sets it; Qwen only with use_sliding_window)
  bool tie_word_embeddings = false;
  // Which linear layers carry a bias. Llama/Qwen3 attention_bias: q, k, v and o;
  // Qwen2: q, k, v always, never o; Llama mlp_bias: gate, up, down.
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;            // Qwen3: RMSNorm over head_dim of each q and k head before RoPE
  int bos_token_id = -1;           // -1: none
  std::vector<int> eos_token_ids;  // may be empty
  std::string torch_dtype;         // the stored weight type ("bfloat16", ...); may be empty
};

// Parses a config object; `where` prefixes every error (usually "<dir>/config.json").
ModelConfig parse_config(const nlohmann::json& j, const std::string& where);
// Reads and parses <model_dir>/config.json.
ModelConfig load_config(const std::string& model_dir);

}  // namespace zc::model
