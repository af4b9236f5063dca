// Normalizers of tokenizer.json (HF normalizers/): Sequence, Prepend, Replace (the
// SentencePiece-style "▁" rules of Llama 2 / Mistral / TinyLlama), NFC/NFD/NFKC/NFKD
// (Qwen2/3 use NFC), Strip.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/components.h"
#include "tokenizer/utf8.h"

namespace zc::tok {

using nlohmann::json;

namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);  // HF prepends only to non-empty strings
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& s) const override { s = replace_all(s, pattern_, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormForm form) : form_(form) {}
  void normalize(std::string& s) const override { s = unicode_normalize(s, form_); }

 private:
  NormForm form_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {  // Rust str::trim: Unicode White_Space
    size_t begin = 0, end = s.size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!is_white_space(utf8_next(s, next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = 0;
        if (!is_white_space(utf8_prev(s, end, start))) break;
        end = start;
      }
    }
    s = s.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where, const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j, where, field);
  if (type == "Sequence") {
    const auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) zc::fail("{}: {}.normalizers must be an array", where, field);
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      auto part = make_normalizer((*it)[i], where, fmt::format("{}.normalizers[{}]", field, i));
      if (part) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(get_string(j, "prepend", where, field));
  if (type == "Replace") {
    if (!j.contains("pattern")) zc::fail("{}: {}.pattern is missing", where, field);
    return std::make_unique<ReplaceNormalizer>(Pattern(j["pattern"], where, field + ".pattern"),
                                               get_string(j, "content", where, field));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormForm::NFKD);
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(get_bool(j, "strip_left", true, where, field),
                                             get_bool(j, "strip_right", true, where, field));
  }
  zc::fail("{}: {} type '{}' is not supported", where, field, type);
}

}  // namespace zc::tok
