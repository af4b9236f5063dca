// `--kv NAME[:key=value,...]` parsing, names, descriptions and help (method.h).
// Defaults follow SPEC.md: KIVI G = 32, R = 128 (section 2); ZipCache r = 0.4, 4/2 bits,
// probes 5% recent + 5% random, normalized saliency, streaming gap 100, CSTQ values
// (sections 3-4); MiKV accumulated scores over all rows, groupwise keys and values
// (section 5); H2O keeps 20% of the tokens.
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "core/error.h"
#include "kv/method.h"

namespace zc::kv {
namespace {

struct Parser {
  const std::string& spec;

  [[noreturn]] void bad(const std::string& key, const std::string& value,
                        const std::string& expected) const {
    fail("--kv '{}': option '{}' expects {}, got '{}'", spec, key, expected, value);
  }

  long long integer(const std::string& key, const std::string& value, long long lo,
                    long long hi) const {
    long long x = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || x < lo ||
        x > hi) {
      bad(key, value, fmt::format("an integer in [{}, {}]", lo, hi));
    }
    return x;
  }

  uint64_t unsigned64(const std::string& key, const std::string& value) const {
    uint64_t x = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
      bad(key, value, "a non-negative integer");
    }
    return x;
  }

  // A number in [lo, hi] (lo excluded when lo_open).
  double number(const std::string& key, const std::string& value, double lo, double hi,
                bool lo_open = false) const {
    double x = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
        !std::isfinite(x) || x > hi || x < lo || (lo_open && x == lo)) {
      bad(key, value, fmt::format("a number in {}{}, {}]", lo_open ? "(" : "[", lo, hi));
    }
    return x;
  }

  int bits(const std::string& key, const std::string& value) const {
    if (value == "2" || value == "4" || value == "8") return std::stoi(value);
    bad(key, value, "a bit width of 2, 4 or 8");
  }
};

// Which options each method takes (for "does not apply" errors and the help text).
const std::map<Method, std::set<std::string>>& allowed_keys() {
  static const std::set<std::string> mixed = {
      "bits",        "hi",         "lo",   "ratio",  "probe",  "probe-recent", "probe-random",
      "probe-kind",  "seed",       "metric", "norm", "gap",    "values",       "vgroup",
      "keys",        "kgroup",     "block"};
  static const std::map<Method, std::set<std::string>> keys = {
      {Method::Fp32, {}},
      {Method::Fp16, {}},
      {Method::Kivi, {"bits", "group", "residual"}},
      {Method::ZipCache, mixed},
      {Method::MiKV, mixed},
      {Method::H2O, {"budget"}},
  };
  return keys;
}

MethodConfig defaults(const std::string& spec, const std::string& name) {
  MethodConfig c;
  if (name == "fp32") {
    c.method = Method::Fp32;
  } else if (name == "fp16") {
    c.method = Method::Fp16;
  } else if (name == "kivi2" || name == "kivi4") {
    c.method = Method::Kivi;
    c.kivi_bits = name == "kivi2" ? 2 : 4;
  } else if (name == "zipcache") {
    c.method = Method::ZipCache;
  } else if (name == "h2o") {
    c.method = Method::H2O;
  } else if (name == "mikv") {
    // MiKV (SPEC.md section 5): accumulated attention from the full attention matrix,
    // groupwise quantization of keys and values (per token, groups of 32 channels).
    c.method = Method::MiKV;
    c.metric = saliency::Metric::Accumulated;
    c.probe_all_rows = true;
    c.value_scheme = quant::Scheme::Groupwise;
    c.key_scheme = quant::Scheme::Groupwise;
  } else {
    fail("--kv '{}': unknown method '{}' (expected fp32, fp16, kivi2, kivi4, zipcache, h2o or "
         "mikv)",
         spec, name);
  }
  return c;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return parts;
}

std::string percent(double x) { return fmt::format("{:g}%", x * 100.0); }

}  // namespace

MethodConfig parse_method(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  MethodConfig c = defaults(spec, name);
  c.label = spec;
  if (colon == std::string::npos) return c;

  const Parser p{spec};
  const auto& allowed = allowed_keys().at(c.method);
  std::map<std::string, std::string> options;
  for (const auto& item : split(spec.substr(colon + 1), ',')) {
    const size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos || eq == 0) {
      fail("--kv '{}': option '{}' is not of the form key=value", spec, item);
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      fail("--kv '{}': option '{}' does not apply to {} (its options: {})", spec, key, name,
           list.empty() ? "none" : list);
    }
    if (!options.emplace(key, value).second) fail("--kv '{}': option '{}' given twice", spec, key);
  }

  // Probe options: a total ratio split by kind, or the two ratios given directly.
  double probe_total = c.probes.recent_ratio + c.probes.random_ratio;
  std::string probe_kind = "mixed";
  for (const auto& [key, value] : options) {
    if (key == "bits") {
      const int b = p.bits(key, value);
      c.kivi_bits = b;
      c.bits_high = c.bits_low = b;  // zipcache/mikv: uniform precision (an ablation)
    } else if (key == "hi") {
      c.bits_high = p.bits(key, value);
    } else if (key == "lo") {
      c.bits_low = p.bits(key, value);
    } else if (key == "group") {
      c.group = int(p.integer(key, value, 1, 1 << 16));
    } else if (key == "residual") {
      c.residual = int(p.integer(key, value, 0, 1 << 20));
    } else if (key == "ratio") {
      c.saliency_ratio = p.number(key, value, 0.0, 1.0);
    } else if (key == "probe") {
      probe_total = p.number(key, value, 0.0, 1.0);
    } else if (key == "probe-recent") {
      c.probes.recent_ratio = p.number(key, value, 0.0, 1.0);
    } else if (key == "probe-random") {
      c.probes.random_ratio = p.number(key, value, 0.0, 1.0);
    } else if (key == "probe-kind") {
      if (value != "mixed" && value != "recent" && value != "random" && value != "all") {
        p.bad(key, value, "mixed, recent, random or all");
      }
      probe_kind = value;
    } else if (key == "seed") {
      c.probes.seed = p.unsigned64(key, value);
    } else if (key == "metric") {
      if (value != "normalized" && value != "accumulated" && value != "recent" &&
          value != "random") {
        p.bad(key, value, "normalized, accumulated, recent or random");
      }
      c.metric = saliency::parse_metric(value);
    } else if (key == "norm") {
      if (value != "probes" && value != "full") p.bad(key, value, "probes or full");
      c.norm = saliency::parse_norm(value);
    } else if (key == "gap") {
      c.stream_gap = int(p.integer(key, value, 1, 1 << 20));
    } else if (key == "values" || key == "keys") {
      if (value != "cstq" && value != "tokenwise" && value != "groupwise" &&
          value != "channelwise") {
        p.bad(key, value, "cstq, tokenwise, groupwise or channelwise");
      }
      (key == "values" ? c.value_scheme : c.key_scheme) = quant::parse_scheme(value);
    } else if (key == "vgroup") {
      c.value_group = int(p.integer(key, value, 1, 1 << 16));
    } else if (key == "kgroup") {
      c.key_group = int(p.integer(key, value, 1, 1 << 16));
    } else if (key == "block") {
      c.stats_block = int(p.integer(key, value, 0, 1 << 20));
    } else if (key == "budget") {
      c.budget = p.number(key, value, 0.0, 1.0, /*lo_open=*/true);
    }
  }

  const bool direct = options.count("probe-recent") || options.count("probe-random");
  if (direct && (options.count("probe") || options.count("probe-kind"))) {
    fail("--kv '{}': give either probe/probe-kind or probe-recent/probe-random, not both", spec);
  }
  if (!direct && (options.count("probe") || options.count("probe-kind"))) {
    c.probe_all_rows = probe_kind == "all";
    if (probe_kind == "mixed" || probe_kind == "all") {
      c.probes.recent_ratio = c.probes.random_ratio = probe_total / 2;
    } else if (probe_kind == "recent") {
      c.probes.recent_ratio = probe_total, c.probes.random_ratio = 0.0;
    } else {
      c.probes.recent_ratio = 0.0, c.probes.random_ratio = probe_total;
    }
  }
  if (direct) c.probe_all_rows = false;
  if (c.probes.recent_ratio + c.probes.random_ratio > 1.0 + 1e-12) {
    fail("--kv '{}': probe ratios add up to {} (at most 1)", spec,
         c.probes.recent_ratio + c.probes.random_ratio);
  }
  if (c.method == Method::Kivi && c.residual % c.group != 0) {
    fail("--kv '{}': residual {} is not a multiple of group {}", spec, c.residual, c.group);
  }
  return c;
}

std::string method_name(Method m) {
  switch (m) {
    case Method::Fp32: return "fp32";
    case Method::Fp16: return "fp16";
    case Method::Kivi: return "kivi";
    case Method::ZipCache: return "zipcache";
    case Method::H2O: return "h2o";
    case Method::MiKV: return "mikv";
  }
  return "unknown";
}

std::string describe(const MethodConfig& c) {
  const std::string name = c.label.empty() ? method_name(c.method) : c.label;
  switch (c.method) {
    case Method::Fp32: return name + ": keys and values stored exactly in fp32 (reference)";
    case Method::Fp16: return name + ": keys and values stored in fp16 (no compression)";
    case Method::Kivi:
      return fmt::format(
          "{}: {}-bit keys per channel over groups of {} tokens, values per token in groups of {} "
          "channels, fp16 residual window of {} tokens",
          name, c.kivi_bits, c.group, c.group, c.residual);
    case Method::H2O:
      return fmt::format(
          "{}: keep {} of the tokens in fp16 (half heavy hitters by accumulated attention, half "
          "the most recent), evict the rest",
          name, percent(c.budget));
    case Method::ZipCache:
    case Method::MiKV: break;
  }
  const auto scheme = [](quant::Scheme s, int group) {
    return s == quant::Scheme::Groupwise ? fmt::format("groupwise({})", group)
                                         : quant::scheme_name(s);
  };
  std::string probes =
      c.probe_all_rows ? "all query rows"
                       : fmt::format("probes {} recent + {} random (seed {})",
                                     percent(c.probes.recent_ratio),
                                     percent(c.probes.random_ratio), c.probes.seed);
  std::string metric = saliency::metric_name(c.metric);
  if (c.metric == saliency::Metric::Normalized) metric += " (norm " + saliency::norm_name(c.norm) + ")";
  return fmt::format(
      "{}: {} salient tokens at {} bits, the rest at {} bits; keys {}, values {}; saliency {} "
      "from {}; channel statistics {}; streaming gap {} tokens",
      name, percent(c.saliency_ratio), c.bits_high, c.bits_low, scheme(c.key_scheme, c.key_group),
      scheme(c.value_scheme, c.value_group), metric, probes,
      c.stats_block > 0 ? fmt::format("per block of {} tokens", c.stats_block) : "per set",
      c.stream_gap);
}

std::string method_help() {
  return R"(KV cache methods (--kv NAME[:key=value,...]):
  fp32        exact fp32 keys and values (the reference)
  fp16        fp16 keys and values, no compression
  kivi2, kivi4  KIVI: keys per channel over groups of G tokens, values per token in
              groups of G channels, newest R..R+G-1 tokens in fp16
              bits=2|4|8  group=G (32)  residual=R (128, a multiple of G)
  zipcache    ZipCache: top ratio of tokens by normalized attention (from probe
              queries) at hi bits, the rest at lo bits; keys channelwise, values CSTQ
              hi=4 lo=2 (or bits=B for both)  ratio=0.4
              probe=0.1 probe-kind=mixed|recent|random|all  (or probe-recent=,
              probe-random=)  seed=0  metric=normalized|accumulated|recent|random
              norm=probes|full  gap=100 (decode tokens kept in fp16 before a chunk is
              quantized)  keys=channelwise|...  kgroup=32  values=cstq|tokenwise|
              groupwise|channelwise  vgroup=32  block=0 (channel statistics per block
              of N tokens; 0: per set)
  mikv        MiKV: as zipcache with metric=accumulated over all rows and groupwise
              keys and values (same options)
  h2o         H2O: keep budget x length tokens in fp16 (half heavy hitters, half
              recent), evict the rest   budget=0.2
)";
}

}  // namespace zc::kv
