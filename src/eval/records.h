// One scored item per line of <out>/items.jsonl, appended as each item finishes, so an
// interrupted run loses at most the item in progress; a rerun finds finished items by
// their key (model, task, task parameters, method spec, item index, base seed, and the
// device where it is not the CPU) and skips them, and every summary is rebuilt from the
// file.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace zc::eval {

struct ItemRecord {
  // The key.
  std::string model;   // model folder (absolute)
  std::string task;    // "lines", ...
  std::string params;  // "lines=100", "tokens=2000", ...
  std::string method;  // the --kv spec as written (with "@REF" when its budget is matched)
  int index = 0;
  uint64_t seed = 0;   // the run's base seed
  std::string device = "cpu";  // "cpu", or "cuda" (bf16 weights; records before it: cpu)
  // What ran and what came out.
  std::string resolved;  // the --kv spec that ran (a matched budget filled in)
  uint64_t item_seed = 0;
  std::string expected, extracted, output, stop_reason;
  bool correct = false;
  int prompt_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  // The caches of all layers at the end of the item (kv::MemoryReport).
  double ratio = 0, bits_per_value = 0;
  uint64_t cache_bytes = 0, fp16_bytes = 0;
  // Perplexity windows: natural-log loss and scored tokens.
  double nll = 0;
  long scored_tokens = 0;

  std::string key() const;
};

// The CPU's keys are those of the records made before the GPU ran items, so that their
// files resume; another device is a seventh element.
std::string item_key(const std::string& model, const std::string& task, const std::string& params,
                     const std::string& method, int index, uint64_t seed, const std::string& device = "cpu");
nlohmann::json to_json(const ItemRecord& r);
// zc::Error naming the missing or mistyped field.
ItemRecord record_from_json(const nlohmann::json& j);

class ItemStore {
 public:
  // Reads the records already in `path` (created on the first append). Lines that do
  // not parse (an interrupted write) are skipped and listed in warnings(); a later
  // record of the same key replaces an earlier one.
  explicit ItemStore(std::string path);
  const ItemRecord* find(const std::string& key) const;
  // Writes the record as one line and flushes it to the file.
  void append(const ItemRecord& r);
  size_t size() const { return records_.size(); }
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, ItemRecord> records_;
  std::vector<std::string> warnings_;
  bool needs_newline_ = false;  // the file ends in a torn line
  std::ofstream out_;
};

}  // namespace zc::eval
