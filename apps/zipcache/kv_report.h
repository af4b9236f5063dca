// Output of `zipcache kv`: the table, the demo's comparisons, JSON and the
// dequantized tensors.
#pragma once
#include <string>
#include <vector>

#include "kv_analysis.h"

namespace zc::app {

void print_table(const std::vector<KvResult>& results);
// The two claims the demo checks on its data: normalized vs accumulated saliency at
// the same bits (attention-output error) and CSTQ vs tokenwise values (V error).
void print_demo_comparisons(const std::vector<KvResult>& results);
void write_json(const std::string& path, const KvInput& input, const std::vector<KvResult>& results,
                const std::string& source);
void write_output(const std::string& path, const std::vector<KvResult>& results);

// Salient (high-precision) tokens of one KV head: positions whose bit width is the
// highest quantized width stored for that head and below 16.
std::vector<int> salient_tokens(const kv::Snapshot& snapshot, int head);
// "0-3, 7, 12-15, ..." with at most max_ranges ranges.
std::string format_ranges(const std::vector<int>& tokens, size_t max_ranges);

}  // namespace zc::app
