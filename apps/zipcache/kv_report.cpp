#include "kv_report.h"

#include <algorithm>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"

namespace zc::app {

std::vector<int> salient_tokens(const kv::Snapshot& s, int head) {
  const uint8_t* bits = &s.bits[size_t(head) * s.length];
  std::set<int> widths;
  for (int t = 0; t < s.length; ++t)
    if (bits[t] > 0 && bits[t] < 16) widths.insert(bits[t]);
  if (widths.size() < 2) return {};  // one precision: nothing stands out
  const int high = *widths.rbegin();
  std::vector<int> out;
  for (int t = 0; t < s.length; ++t)
    if (bits[t] == high) out.push_back(t);
  return out;
}

std::string format_ranges(const std::vector<int>& tokens, size_t max_ranges) {
  std::string out;
  size_t ranges = 0;
  for (size_t i = 0; i < tokens.size();) {
    size_t j = i;
    while (j + 1 < tokens.size() && tokens[j + 1] == tokens[j] + 1) ++j;
    if (ranges == max_ranges) {
      out += ", ...";
      break;
    }
    if (!out.empty()) out += ", ";
    out += j == i ? fmt::format("{}", tokens[i]) : fmt::format("{}-{}", tokens[i], tokens[j]);
    ++ranges;
    i = j + 1;
  }
  return out;
}

void print_table(const std::vector<KvResult>& results) {
  size_t width = 6;
  for (const auto& r : results) width = std::max(width, r.label.size());
  fmt::print("{:<{}}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}  {:>11}\n", "method", width, "bits/val",
             "ratio", "K err", "V err", "attn err", "KV bytes");
  for (const auto& r : results) {
    const std::string attn = r.attn_rel_error < 0 ? "-" : fmt::format("{:.5f}", r.attn_rel_error);
    fmt::print("{:<{}}  {:>9.3f}  {:>6.2f}x  {:>9.5f}  {:>9.5f}  {:>9}  {:>11}\n", r.label, width,
               r.memory.bits_per_value(), r.memory.ratio(), r.k_rel_error, r.v_rel_error, attn,
               r.memory.total());
  }
  fmt::print("\nbits/val counts every stored bit (codes, fp16 parameters, channel scales, fp16 "
             "window, metadata); errors are relative L2 (attention: last {} query rows; evicted "
             "tokens count as lost).\n",
             kAttentionRows);
  for (const auto& r : results) {
    for (int h = 0; h < r.snapshot.n_kv_heads; ++h) {
      const auto salient = salient_tokens(r.snapshot, h);
      if (salient.empty()) continue;
      if (h == 0) fmt::print("\nsalient tokens of {}:\n", r.label);
      fmt::print("  head {}: {} tokens: {}\n", h, salient.size(), format_ranges(salient, 10));
    }
  }
}

namespace {

const KvResult* find(const std::vector<KvResult>& results, const std::string& label) {
  for (const auto& r : results)
    if (r.label == label) return &r;
  return nullptr;
}

}  // namespace

void print_demo_comparisons(const std::vector<KvResult>& results) {
  const auto* normalized = find(results, "zipcache");
  const auto* accumulated = find(results, "zipcache:metric=accumulated");
  const auto* tokenwise = find(results, "zipcache:values=tokenwise");
  fmt::print("\n");
  if (normalized && accumulated && normalized->attn_rel_error >= 0) {
    const bool better = normalized->attn_rel_error < accumulated->attn_rel_error;
    fmt::print("saliency at equal bits ({:.3f} vs {:.3f} bits/value): normalized attention error "
               "{:.5f}, accumulated {:.5f}: normalized is {}\n",
               normalized->memory.bits_per_value(), accumulated->memory.bits_per_value(),
               normalized->attn_rel_error, accumulated->attn_rel_error,
               better ? "LOWER (better)" : "NOT lower");
  }
  if (normalized && tokenwise) {
    const bool better = normalized->v_rel_error < tokenwise->v_rel_error;
    fmt::print("value quantizer at equal saliency: CSTQ V error {:.5f} ({:.3f} bits/value), "
               "tokenwise {:.5f} ({:.3f} bits/value): CSTQ is {}\n",
               normalized->v_rel_error, normalized->memory.bits_per_value(), tokenwise->v_rel_error,
               tokenwise->memory.bits_per_value(), better ? "LOWER (better)" : "NOT lower");
  }
}

void write_json(const std::string& path, const KvInput& input, const std::vector<KvResult>& results,
                const std::string& source) {
  nlohmann::json j;
  j["source"] = source;
  j["tokens"] = input.L;
  j["n_heads"] = input.n_heads;
  j["n_kv_heads"] = input.n_kv_heads;
  j["head_dim"] = input.head_dim;
  for (const auto& r : results) {
    nlohmann::json m;
    m["method"] = r.label;
    m["bits_per_value"] = r.memory.bits_per_value();
    m["compression_ratio"] = r.memory.ratio();
    m["bytes"] = {{"codes", r.memory.code_bytes},     {"params", r.memory.param_bytes},
                  {"fp16_window", r.memory.window_bytes}, {"metadata", r.memory.metadata_bytes},
                  {"total", r.memory.total()},        {"fp16_equivalent", r.memory.fp16_bytes}};
    m["k_rel_error"] = r.k_rel_error;
    m["v_rel_error"] = r.v_rel_error;
    if (r.attn_rel_error >= 0) m["attention_rel_error"] = r.attn_rel_error;
    nlohmann::json salient = nlohmann::json::array();
    for (int h = 0; h < r.snapshot.n_kv_heads; ++h) salient.push_back(salient_tokens(r.snapshot, h));
    m["salient_tokens"] = salient;
    j["results"].push_back(m);
  }
  std::ofstream out(path);
  if (!out) fail("{}: cannot open for writing", path);
  out << j.dump(2) << "\n";
  if (!out) fail("{}: write failed", path);
}

void write_output(const std::string& path, const std::vector<KvResult>& results) {
  std::vector<io::TensorToWrite> tensors;
  std::map<std::string, std::string> metadata;
  for (const auto& r : results) {
    const std::string prefix = results.size() == 1 ? "" : r.label + "/";
    const auto& s = r.snapshot;
    const std::vector<int64_t> shape = {s.n_kv_heads, s.length, s.head_dim};
    tensors.push_back({prefix + "k", io::DType::F32, shape, s.k, {}});
    tensors.push_back({prefix + "v", io::DType::F32, shape, s.v, {}});
    io::TensorToWrite bits{prefix + "bits", io::DType::I32, {s.n_kv_heads, s.length}, {}, {}};
    bits.ints.assign(s.bits.begin(), s.bits.end());
    tensors.push_back(std::move(bits));
    metadata[prefix + "method"] = r.label;
    metadata[prefix + "compression_ratio"] = fmt::format("{:.4f}", r.memory.ratio());
  }
  io::write_safetensors(path, tensors, metadata);
  fmt::print("\nwrote {}\n", path);
}

}  // namespace zc::app
