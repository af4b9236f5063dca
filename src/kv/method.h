// Which cache policy to use and its options, parsed from the command line's
// `--kv NAME[:key=value,...]` (e.g. `zipcache:ratio=0.4,hi=4,lo=2,gap=100`).
#pragma once
#include <string>
#include <vector>

#include "quant/quantizer.h"
#include "saliency/saliency.h"

namespace zc::kv {

// Fp32 stores keys and values exactly as computed (4 bytes each): the reference that
// golden tests compare against HF's fp32 logits, since fp16 rounding alone exceeds 1e-4.
enum class Method { Fp16, Kivi, ZipCache, H2O, MiKV, Fp32 };

struct MethodConfig {
  Method method = Method::Fp16;
  std::string label;  // as the user wrote it; shown in tables

  // KIVI (SPEC.md section 2): bits, group of G tokens (keys) / channels (values),
  // residual fp16 window R (a multiple of G).
  int kivi_bits = 2;
  int group = 32;
  int residual = 128;

  // ZipCache and MiKV (SPEC.md sections 3-5).
  int bits_high = 4;
  int bits_low = 2;
  double saliency_ratio = 0.4;
  saliency::ProbeConfig probes;      // probe ratios and seed
  bool probe_all_rows = false;       // exact scores from every query row
  saliency::Metric metric = saliency::Metric::Normalized;
  saliency::Norm norm = saliency::Norm::ProbeCount;
  int stream_gap = 100;              // n_stream: fp16 tokens gathered before a chunk
  quant::Scheme value_scheme = quant::Scheme::Cstq;  // ablation: Tokenwise, Groupwise
  int value_group = 32;              // when value_scheme is Groupwise (and MiKV)
  int stats_block = 0;               // channel statistics over blocks of N tokens (0: whole set)

  // H2O: fraction of tokens kept (heavy hitters + recent window, half each).
  double budget = 0.2;

  // Salient tokens given by the caller instead of computed (ZipCache/MiKV prefill):
  // one ascending list of token positions per KV head, or a single list for all heads.
  // Empty: scores decide (the normal case).
  std::vector<std::vector<int>> given_salient;

  // Diagnostics only (not needed for attention, not counted as cache storage):
  // remember each stored token's position so snapshot() can report it.
  bool record_positions = false;

  // ZipCache and MiKV: how keys are quantized. ZipCache: channelwise over the set
  // (SPEC.md section 4). MiKV: groupwise, groups of key_group channels per token, as
  // the ZipCache paper's MiKV baseline quantizes "groupwise" (SPEC.md section 5).
  quant::Scheme key_scheme = quant::Scheme::Channelwise;
  int key_group = 32;  // when key_scheme is Groupwise

  // Every field, the label included (the GPU session reuses a runner for an equal one).
  friend bool operator==(const MethodConfig&, const MethodConfig&) = default;
};

// Parses "fp32", "fp16", "kivi2", "kivi4", "zipcache", "h2o", "mikv" with options after ':'.
// Throws zc::Error naming the bad part.
MethodConfig parse_method(const std::string& spec);
std::string method_name(Method m);
// A one-line description with every option that matters for this method.
std::string describe(const MethodConfig& config);
// The help text listing methods and their options.
std::string method_help();

}  // namespace zc::kv
