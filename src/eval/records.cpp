#include "eval/records.h"

#include <fmt/format.h>

#include "core/error.h"

namespace zc::eval {

std::string item_key(const std::string& model, const std::string& task, const std::string& params,
                     const std::string& method, int index, uint64_t seed, const std::string& device) {
  auto key = nlohmann::json::array({model, task, params, method, index, seed});
  if (device != "cpu") key.push_back(device);
  return key.dump();
}

std::string ItemRecord::key() const { return item_key(model, task, params, method, index, seed, device); }

nlohmann::json to_json(const ItemRecord& r) {
  return {{"model", r.model},
          {"task", r.task},
          {"params", r.params},
          {"method", r.method},
          {"index", r.index},
          {"seed", r.seed},
          {"device", r.device},
          {"resolved", r.resolved},
          {"item_seed", r.item_seed},
          {"expected", r.expected},
          {"extracted", r.extracted},
          {"output", r.output},
          {"stop_reason", r.stop_reason},
          {"correct", r.correct},
          {"prompt_tokens", r.prompt_tokens},
          {"generated_tokens", r.generated_tokens},
          {"prefill_seconds", r.prefill_seconds},
          {"decode_seconds", r.decode_seconds},
          {"ratio", r.ratio},
          {"bits_per_value", r.bits_per_value},
          {"cache_bytes", r.cache_bytes},
          {"fp16_bytes", r.fp16_bytes},
          {"nll", r.nll},
          {"scored_tokens", r.scored_tokens}};
}

ItemRecord record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("item record: not a JSON object");
  const auto get = [&](const char* field, auto& out) {
    if (!j.contains(field)) fail("item record: field '{}' is missing", field);
    try {
      j.at(field).get_to(out);
    } catch (const nlohmann::json::exception&) {
      fail("item record: field '{}' has the wrong type", field);
    }
  };
  ItemRecord r;
  get("model", r.model), get("task", r.task), get("params", r.params), get("method", r.method);
  get("index", r.index), get("seed", r.seed), get("resolved", r.resolved);
  if (j.contains("device")) get("device", r.device);  // absent in records made before it
  if (r.device.empty()) fail("item record: field 'device' is empty");
  get("item_seed", r.item_seed), get("expected", r.expected), get("extracted", r.extracted);
  get("output", r.output), get("stop_reason", r.stop_reason), get("correct", r.correct);
  get("prompt_tokens", r.prompt_tokens), get("generated_tokens", r.generated_tokens);
  get("prefill_seconds", r.prefill_seconds), get("decode_seconds", r.decode_seconds);
  get("ratio", r.ratio), get("bits_per_value", r.bits_per_value);
  get("cache_bytes", r.cache_bytes), get("fp16_bytes", r.fp16_bytes);
  get("nll", r.nll), get("scored_tokens", r.scored_tokens);
  return r;
}

ItemStore::ItemStore(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return;  // a new run
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.empty()) continue;
    try {
      ItemRecord r = record_from_json(nlohmann::json::parse(line));
      records_[r.key()] = std::move(r);
    } catch (const std::exception& e) {
      warnings_.push_back(fmt::format("{}:{}: skipped a line that is not an item record ({})", path_,
                                      no, e.what()));
    }
  }
  // A file that does not end in '\n' was cut mid-line: start the next record on its own line.
  in.clear();
  in.seekg(0, std::ios::end);
  if (in.tellg() > 0) {
    in.seekg(-1, std::ios::end);
    needs_newline_ = in.get() != '\n';
  }
}

const ItemRecord* ItemStore::find(const std::string& key) const {
  const auto it = records_.find(key);
  return it == records_.end() ? nullptr : &it->second;
}

void ItemStore::append(const ItemRecord& r) {
  if (!out_.is_open()) {
    out_.open(path_, std::ios::binary | std::ios::app);
    if (!out_) fail("{}: cannot open for appending results", path_);
  }
  if (needs_newline_) out_ << '\n';
  needs_newline_ = false;
  out_ << to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  out_.flush();
  if (!out_) fail("{}: writing a result failed", path_);
  records_[r.key()] = r;
}

}  // namespace zc::eval
