#include "model/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace zc::model {

using nlohmann::json;

std::string arch_name(Arch a) {
  switch (a) {
    case Arch::Llama:
      return "LlamaForCausalLM";
    case Arch::Mistral:
      return "MistralForCausalLM";
    case Arch::Qwen2:
      return "Qwen2ForCausalLM";
    case Arch::Qwen3:
      return "Qwen3ForCausalLM";
  }
  return "?";
}

namespace {

// Field readers. A JSON null counts as absent: HF writes e.g. "rope_scaling": null
// or "num_key_value_heads": null for "use the default".
class Reader {
 public:
  Reader(const json& obj, std::string where, std::string prefix = "")
      : obj_(obj), where_(std::move(where)), prefix_(std::move(prefix)) {}

  bool has(const char* name) const {
    auto it = obj_.find(name);
    return it != obj_.end() && !it->is_null();
  }
  const json& at(const char* name) const {
    if (!has(name)) fail("{}: field '{}{}' is missing", where_, prefix_, name);
    return obj_.at(name);
  }
  [[noreturn]] void bad(const char* name, const std::string& what) const {
    fail("{}: field '{}{}' {}", where_, prefix_, name, what);
  }

  int64_t integer(const char* name) const {
    const json& v = at(name);
    if (!v.is_number_integer()) bad(name, fmt::format("must be an integer, got {}", v.dump()));
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) bad(name, "is too large");
      return static_cast<int64_t>(u);
    }
    return v.get<int64_t>();
  }
  // A positive int that fits the sizes the forward pass uses.
  int positive(const char* name) const {
    const int64_t v = integer(name);
    if (v <= 0 || v > (int64_t{1} << 30)) bad(name, fmt::format("must be in [1, 2^30], got {}", v));
    return static_cast<int>(v);
  }
  int positive_or(const char* name, int fallback) const {
    return has(name) ? positive(name) : fallback;
  }
  double number(const char* name) const {
    const json& v = at(name);
    if (!v.is_number()) bad(name, fmt::format("must be a number, got {}", v.dump()));
    const double d = v.get<double>();
    if (!std::isfinite(d)) bad(name, "must be finite");
    return d;
  }
  double number_or(const char* name, double fallback) const {
    return has(name) ? number(name) : fallback;
  }
  bool boolean_or(const char* name, bool fallback) const {
    if (!has(name)) return fallback;
    const json& v = obj_.at(name);
    if (!v.is_boolean()) bad(name, fmt::format("must be true or false, got {}", v.dump()));
    return v.get<bool>();
  }
  std::string string(const char* name) const {
    const json& v = at(name);
    if (!v.is_string()) bad(name, fmt::format("must be a string, got {}", v.dump()));
    return v.get<std::string>();
  }
  // Token ids: an integer or a list of integers (Llama 3 lists several eos ids).
  std::vector<int> token_ids(const char* name) const {
    std::vector<int> ids;
    if (!has(name)) return ids;
    const json& v = obj_.at(name);
    auto one = [&](const json& e) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
          e.get<int64_t>() > std::numeric_limits<int>::max()) {
        bad(name,
            fmt::format("must be a non-negative integer or a list of them, got {}", v.dump()));
      }
      ids.push_back(static_cast<int>(e.get<int64_t>()));
    };
    if (v.is_array()) {
      for (const json& e : v) one(e);
    } else {
      one(v);
    }
    return ids;
  }

  const std::string& where() const { return where_; }

 private:
  const json& obj_;
  std::string where_;
  std::string prefix_;
};

Arch parse_arch(const Reader& r) {
  static const std::pair<const char*, Arch> known[] = {
      {"LlamaForCausalLM", Arch::Llama},
      {"MistralForCausalLM", Arch::Mistral},
      {"Qwen2ForCausalLM", Arch::Qwen2},
      {"Qwen3ForCausalLM", Arch::Qwen3},
  };
  const json& a = r.at("architectures");
  if (!a.is_array() || a.empty()) r.bad("architectures", "must be a non-empty list of class names");
  for (const json& e : a) {
    if (!e.is_string()) r.bad("architectures", fmt::format("must list strings, got {}", e.dump()));
    for (const auto& [name, arch] : known) {
      if (e.get<std::string>() == name) return arch;
    }
  }
  r.bad("architectures",
        fmt::format("names no supported architecture: {} (supported: LlamaForCausalLM, "
                    "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                    a.dump()));
}

// rope_scaling (transformers 4) or rope_parameters (transformers 5), the same keys.
RopeScaling parse_rope(const json& obj, const std::string& where, const std::string& field) {
  if (!obj.is_object()) fail("{}: field '{}' must be an object or null", where, field);
  const Reader r(obj, where, field + ".");
  std::string type;
  if (r.has("rope_type")) {
    type = r.string("rope_type");
  } else if (r.has("type")) {
    type = r.string("type");
  } else {
    r.bad("rope_type", "is missing");
  }
  RopeScaling s;
  if (type == "default") {
    s.type = RopeType::Default;
  } else if (type == "linear") {
    s.type = RopeType::Linear;
    s.factor = r.number("factor");
    if (s.factor <= 0) r.bad("factor", fmt::format("must be positive, got {}", s.factor));
  } else if (type == "llama3") {
    s.type = RopeType::Llama3;
    s.factor = r.number("factor");
    s.low_freq_factor = r.number("low_freq_factor");
    s.high_freq_factor = r.number("high_freq_factor");
    s.original_max_position_embeddings = r.positive("original_max_position_embeddings");
    if (s.factor <= 0) r.bad("factor", fmt::format("must be positive, got {}", s.factor));
    if (s.low_freq_factor <= 0 || s.high_freq_factor <= s.low_freq_factor) {
      r.bad("high_freq_factor", fmt::format("must exceed low_freq_factor > 0, got {} and {}",
                                            s.high_freq_factor, s.low_freq_factor));
    }
  } else {
    r.bad(r.has("rope_type") ? "rope_type" : "type",
          fmt::format("'{}' is not supported (default, linear, llama3)", type));
  }
  return s;
}

}  // namespace

ModelConfig parse_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: must be a JSON object", where);
  const Reader r(j, where);
  ModelConfig c;
  c.arch = parse_arch(r);

  if (r.has("hidden_act") && r.string("hidden_act") != "silu") {
    r.bad("hidden_act", fmt::format("is '{}'; only 'silu' is supported", r.string("hidden_act")));
  }
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.n_heads = r.positive("num_attention_heads");
  c.n_layers = r.positive("num_hidden_layers");
  c.vocab_size = r.positive("vocab_size");
  c.max_position_embeddings = r.positive("max_position_embeddings");
  c.n_kv_heads = r.positive_or("num_key_value_heads", c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0) {
    r.bad("num_key_value_heads",
          fmt::format("({}) must divide num_attention_heads ({})", c.n_kv_heads, c.n_heads));
  }
  if (r.has("head_dim")) {
    c.head_dim = r.positive("head_dim");
  } else {
    if (c.hidden_size % c.n_heads != 0) {
      r.bad("hidden_size", fmt::format("({}) is not a multiple of num_attention_heads ({}) and "
                                       "head_dim is not given",
                                       c.hidden_size, c.n_heads));
    }
    c.head_dim = c.hidden_size / c.n_heads;
  }
  if (c.head_dim % 2 != 0)
    r.bad("head_dim", fmt::format("must be even for RoPE, got {}", c.head_dim));

  c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
  if (c.rms_norm_eps < 0)
    r.bad("rms_norm_eps", fmt::format("must be >= 0, got {}", c.rms_norm_eps));

  c.rope_theta = r.number_or("rope_theta", 10000.0);
  if (r.has("rope_scaling")) c.rope = parse_rope(j.at("rope_scaling"), where, "rope_scaling");
  if (r.has("rope_parameters")) {
    const json& p = j.at("rope_parameters");
    c.rope = parse_rope(p, where, "rope_parameters");
    const Reader pr(p, where, "rope_parameters.");
    if (pr.has("rope_theta")) c.rope_theta = pr.number("rope_theta");
  }
  if (c.rope_theta <= 0) r.bad("rope_theta", fmt::format("must be positive, got {}", c.rope_theta));

  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  const bool attention_bias = r.boolean_or("attention_bias", false);
  switch (c.arch) {
    case Arch::Llama:
      c.qkv_bias = c.o_bias = attention_bias;
      c.mlp_bias = r.boolean_or("mlp_bias", false);
      break;
    case Arch::Mistral:
      c.sliding_window = r.positive_or("sliding_window", 0);
      break;
    case Arch::Qwen2:
    case Arch::Qwen3:
      c.qkv_bias = c.arch == Arch::Qwen2 || attention_bias;
      c.o_bias = c.arch == Arch::Qwen3 && attention_bias;
      c.qk_norm = c.arch == Arch::Qwen3;
      // Qwen's window applies only to the layers from max_window_layers on; one
      // window for all layers is what the cache offers, so refuse rather than be wrong.
      if (r.boolean_or("use_sliding_window", false) && r.has("sliding_window")) {
        r.bad("use_sliding_window", "is true: per-layer sliding windows are not supported");
      }
      break;
  }

  const std::vector<int> bos = r.token_ids("bos_token_id");
  if (bos.size() > 1) r.bad("bos_token_id", "must be a single id");
  c.bos_token_id = bos.empty() ? -1 : bos[0];
  c.eos_token_ids = r.token_ids("eos_token_id");
  if (r.has("torch_dtype")) {
    c.torch_dtype = r.string("torch_dtype");
  } else if (r.has("dtype")) {  // transformers 5 renamed it
    c.torch_dtype = r.string("dtype");
  }
  return c;
}

ModelConfig load_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  json j;
  try {
    j = json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    fail("{}: invalid JSON at byte {}: {}", path, e.byte, e.what());
  }
  return parse_config(j, path);
}

}  // namespace zc::model
