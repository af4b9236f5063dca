// `zipcache info`: what a model folder holds, and what its KV cache costs per token
// under each method.
#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kv/cache.h"
#include "model/config.h"
#include "model_options.h"

namespace zc::app {

namespace {

struct InfoCommand {
  ModelOptions model;
  int tokens = 4096;
};

// Storage of one layer's cache filled with `tokens` tokens (all KV heads): measured,
// since parameters and windows make the per-token cost depend on the length.
kv::MemoryReport measure(const model::ModelConfig& c, const kv::MethodConfig& method, int tokens) {
  kv::KvShape shape{c.n_heads, c.n_kv_heads, c.head_dim, 0.0f, 0};
  auto cache = kv::make_cache(method, shape);
  // Deterministic pseudo-random activations: sizes do not depend on the values.
  std::vector<float> q(size_t(tokens) * c.n_heads * c.head_dim), k(size_t(tokens) * c.n_kv_heads * c.head_dim);
  uint32_t s = 1;
  for (auto& x : q) x = float((s = s * 1664525u + 1013904223u) >> 8) / float(1 << 24) - 0.5f;
  for (auto& x : k) x = float((s = s * 1664525u + 1013904223u) >> 8) / float(1 << 24) - 0.5f;
  std::vector<float> out(q.size());
  cache->prefill(q.data(), k.data(), k.data(), tokens, out.data());
  return cache->memory();
}

int run(InfoCommand& o) {
  const std::string dir = resolve_model_dir(o.model);
  const auto c = model::load_config(dir);
  const io::WeightStore weights(dir);
  size_t params = 0, bytes = 0;
  std::map<std::string, size_t> dtypes;
  for (const auto& name : weights.names()) {
    const auto& info = weights.info(name);
    params += info.numel();
    bytes += info.end - info.begin;
    dtypes[io::dtype_name(info.dtype)] += info.numel();
  }
  std::string dtype_list;
  for (const auto& [name, n] : dtypes) dtype_list += fmt::format("{}{} ({:.1f}%)", dtype_list.empty() ? "" : ", ", name, 100.0 * double(n) / double(params));
  fmt::print("model           {}\n", dir);
  fmt::print("architecture    {}\n", model::arch_name(c.arch));
  fmt::print("parameters      {} ({:.2f} M), weights {} in {}\n", params, double(params) / 1e6,
             human_bytes(double(bytes)), dtype_list);
  fmt::print("layers          {}\nhidden size     {}\nintermediate    {}\n", c.n_layers, c.hidden_size,
             c.intermediate_size);
  fmt::print("heads           {} query, {} KV (GQA group {}), head_dim {}\n", c.n_heads, c.n_kv_heads,
             c.n_heads / c.n_kv_heads, c.head_dim);
  fmt::print("vocabulary      {}\ncontext length  {}{}\n", c.vocab_size, c.max_position_embeddings,
             c.sliding_window ? fmt::format(" (sliding window {})", c.sliding_window) : "");
  fmt::print("rope            theta {}{}\n", c.rope_theta,
             c.rope.type == model::RopeType::Llama3   ? fmt::format(", llama3 scaling x{}", c.rope.factor)
             : c.rope.type == model::RopeType::Linear ? fmt::format(", linear scaling x{}", c.rope.factor)
                                                      : "");
  const int tokens = std::min(o.tokens, c.max_position_embeddings);
  fmt::print("\nKV cache per token (all {} layers), measured on a {}-token cache:\n", c.n_layers, tokens);
  const auto methods = parse_methods(o.model.kv, {"fp16", "kivi4", "kivi2", "zipcache", "mikv"});
  for (const auto& m : methods) {
    const auto r = measure(c, m, tokens);
    const double per_token = double(r.total()) / tokens * c.n_layers;
    fmt::print("  {:<28} {:>10}/token  {:>6.2f}x  {:>6.3f} bits/value\n", method_label(m),
               human_bytes(per_token), r.ratio(), r.bits_per_value());
  }
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "Architecture, sizes and KV bytes per token of a model");
  auto o = std::make_shared<InfoCommand>();
  add_model_options(sub, o->model);
  sub->add_option("--tokens", o->tokens, "context length the KV sizes are measured at")
      ->check(CLI::Range(1, 1 << 20));
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
