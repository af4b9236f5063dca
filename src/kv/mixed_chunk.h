// The mixed-precision pieces of ZipCache and MiKV (SPEC.md sections 3-5), internal to
// src/kv: which tokens of a chunk are salient, and how a chunk is quantized into
// salient (bits_high) and regular (bits_low) blocks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/cache.h"
#include "quant/quantizer.h"

namespace zc::kv {

struct MixedBlock {
  int bits = 0;  // bits_high for salient tokens, bits_low for regular ones
  quant::QuantizedMatrix k, v;
  std::vector<int> positions;  // only with MethodConfig::record_positions (diagnostics)
};

// Salient token indices (ascending) per KV head of a prompt of T tokens prefilled
// into an empty cache: MethodConfig::given_salient when set, else the top
// saliency_ratio of saliency::scores over the probe rows (every row when
// probe_all_rows) with the configured metric and norm.
std::vector<std::vector<int>> prompt_salient(const MethodConfig& config, const KvShape& shape,
                                             const float* q, const float* k, int T);

// Salient token indices (ascending) of a streamed chunk of n tokens of one KV head.
// prob_sums[j]: the attention probability token j received from the queries since it
// arrived (summed over query heads); every such query saw all tokens of the chunk from
// their arrival on, so token j was seen by n - j queries (which is also L - i, so the
// probes/full norms agree here). chunk_seed feeds the random metric.
std::vector<int> chunk_salient(const MethodConfig& config, const float* prob_sums, int n,
                               uint64_t chunk_seed);

// Quantizes a chunk of n tokens of one KV head (row r of keys at k + r * stride, same
// for v; positions first_pos + r): the salient rows at bits_high, the others at
// bits_low, keys with key_scheme and values with value_scheme, each set in position
// order with statistics over the set or over blocks of stats_block tokens. Appends
// the blocks to `out`.
void quantize_chunk(const MethodConfig& config, int d, const float* k, const float* v,
                    size_t stride, int n, const std::vector<int>& salient, int first_pos,
                    std::vector<MixedBlock>& out);

}  // namespace zc::kv
