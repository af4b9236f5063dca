// Post-processors of tokenizer.json (HF processors/), for one sequence: TemplateProcessing
// (the BOS of Llama 2 / Llama 3.1), ByteLevel (offsets only: no ids change), Sequence,
// and the [CLS] A [SEP] of BertProcessing / RobertaProcessing.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/components.h"

namespace zc::tok {

using nlohmann::json;

namespace {

class NoIdsProcessor final : public PostProcessor {  // ByteLevel: trims offsets only
 public:
  void process(std::vector<int32_t>&) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }
  int32_t leading_special() const override {
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) {
      if ((*it)->leading_special() >= 0) return (*it)->leading_special();
    }
    return -1;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// The "single" template: special-token ids around the one sequence.
class TemplateProcessor final : public PostProcessor {
 public:
  TemplateProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  int32_t leading_special() const override { return before_.empty() ? -1 : before_.front(); }

 private:
  std::vector<int32_t> before_, after_;
};

std::unique_ptr<PostProcessor> make_template(const json& j, const std::string& where, const std::string& field) {
  const auto single = j.find("single");
  if (single == j.end() || !single->is_array()) zc::fail("{}: {}.single must be an array", where, field);
  const auto specials = j.find("special_tokens");
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const json& item = (*single)[i];
    const std::string item_field = fmt::format("{}.single[{}]", field, i);
    if (item.contains("Sequence")) {
      if (seen_sequence) zc::fail("{}: {} is a second sequence in a single template", where, item_field);
      seen_sequence = true;
      continue;
    }
    if (!item.contains("SpecialToken")) zc::fail("{}: {} must be a SpecialToken or a Sequence", where, item_field);
    const std::string name = get_string(item["SpecialToken"], "id", where, item_field + ".SpecialToken");
    if (specials == j.end() || !specials->is_object() || !specials->contains(name)) {
      zc::fail("{}: {}.special_tokens has no '{}'", where, field, name);
    }
    const json& ids = (*specials)[name]["ids"];
    if (!ids.is_array()) zc::fail("{}: {}.special_tokens['{}'].ids must be an array", where, field, name);
    for (const json& id : ids) {
      if (!id.is_number_integer()) zc::fail("{}: {}.special_tokens['{}'].ids must be integers", where, field, name);
      (seen_sequence ? after : before).push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) zc::fail("{}: {}.single has no Sequence", where, field);
  return std::make_unique<TemplateProcessor>(std::move(before), std::move(after));
}

int32_t pair_id(const json& j, const char* key, const std::string& where, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
    zc::fail("{}: {}.{} must be [token, id]", where, field, key);
  }
  return (*it)[1].get<int32_t>();
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& where, const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j, where, field);
  if (type == "TemplateProcessing") return make_template(j, where, field);
  if (type == "ByteLevel") return std::make_unique<NoIdsProcessor>();
  if (type == "Sequence") {
    const auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) zc::fail("{}: {}.processors must be an array", where, field);
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      auto part = make_post_processor((*it)[i], where, fmt::format("{}.processors[{}]", field, i));
      if (part) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    return std::make_unique<TemplateProcessor>(std::vector<int32_t>{pair_id(j, "cls", where, field)},
                                               std::vector<int32_t>{pair_id(j, "sep", where, field)});
  }
  zc::fail("{}: {} type '{}' is not supported", where, field, type);
}

}  // namespace zc::tok
