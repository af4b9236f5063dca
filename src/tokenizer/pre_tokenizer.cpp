// Pre-tokenizers of tokenizer.json (HF pre_tokenizers/): Sequence, Split (the regexes of
// Llama 3, Qwen2/3), ByteLevel (GPT-2 regex and byte-to-character map), Digits (SmolLM,
// StarCoder), Metaspace (newer SentencePiece-style exports).
#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/components.h"
#include "tokenizer/utf8.h"

namespace zc::tok {

using nlohmann::json;

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& j, const std::string& where, const std::string& field) {
  const std::string b = get_string(j, "behavior", where, field);
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  zc::fail("{}: {}.behavior '{}' is not supported", where, field, b);
}

// HF NormalizedString::split: cut s at the matches, then keep/merge the delimiters as
// `behavior` says. Appends the non-empty sub-pieces of `piece` to out.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, Behavior behavior,
                 bool invert, std::vector<Piece>& out) {
  const std::string& s = piece.text;
  struct Span {
    size_t start, end;
    bool is_match;
  };
  std::vector<Span> spans;  // covers s; empty matches are kept as HF keeps them
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (prev != start) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (const Span& sp : spans) {
        if (!sp.is_match) kept.emplace_back(sp.start, sp.end);
      }
      break;
    case Behavior::Isolated:
      for (const Span& sp : spans) kept.emplace_back(sp.start, sp.end);
      break;
    case Behavior::Contiguous:
      for (const Span& sp : spans) {
        if (sp.is_match == previous_match && !kept.empty()) {
          kept.back().second = sp.end;
        } else {
          kept.emplace_back(sp.start, sp.end);
        }
        previous_match = sp.is_match;
      }
      break;
    case Behavior::MergedWithPrevious:
      for (const Span& sp : spans) {
        if (sp.is_match && !previous_match && !kept.empty()) {
          kept.back().second = sp.end;
        } else {
          kept.emplace_back(sp.start, sp.end);
        }
        previous_match = sp.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().first = it->start;
        } else {
          kept.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const auto& [start, end] : kept) {
    if (end > start) out.push_back(Piece{s.substr(start, end - start), piece.at_start && start == 0});
  }
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    for (const Piece& p : pieces) split_piece(p, pattern_.find_all(p.text), behavior_, invert_, out);
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is true (HF pre_tokenizers/byte_level.rs).
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where + ": ByteLevel");
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    split.reserve(pieces.size() * 4);
    std::vector<std::pair<size_t, size_t>> matches;
    for (Piece& p : pieces) {
      // (not p.text.insert(0, " "): a g++ 12 -Wrestrict false positive)
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text = std::string(1, ' ') + p.text;
      if (regex_) {
        matches.clear();
        regex_->find_all(p.text, matches);
        split_piece(p, matches, Behavior::Isolated, false, split);
      } else if (!p.text.empty()) {
        split.push_back(std::move(p));
      }
    }
    // Every byte becomes its printable character (the alphabet of the BPE vocabulary).
    for (Piece& p : split) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (char c : p.text) utf8_append(mapped, byte_to_char(static_cast<unsigned char>(c)));
      p.text = std::move(mapped);
    }
    pieces = std::move(split);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

// HF pre_tokenizers/digits.rs: every numeric character (Rust char::is_numeric: Nd, Nl,
// No) is a delimiter of its own, kept apart (individual_digits) or in runs (Contiguous).
class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> matches;
    for (const Piece& p : pieces) {
      matches.clear();
      for (size_t i = 0; i < p.text.size();) {
        const size_t start = i;
        const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(utf8_next(p.text, i)));
        if (category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO) {
          matches.emplace_back(start, i);
        }
      }
      split_piece(p, matches, individual_ ? Behavior::Isolated : Behavior::Contiguous, false, out);
    }
    pieces = std::move(out);
  }

 private:
  bool individual_;
};

enum class PrependScheme { Always, First, Never };

PrependScheme parse_prepend_scheme(const json& j, const std::string& where, const std::string& field) {
  const auto it = j.find("prepend_scheme");
  if (it == j.end() || it->is_null()) {  // older files: add_prefix_space
    return get_bool(j, "add_prefix_space", true, where, field) ? PrependScheme::Always : PrependScheme::Never;
  }
  const std::string s = get_string(j, "prepend_scheme", where, field);
  if (s == "always") return PrependScheme::Always;
  if (s == "first") return PrependScheme::First;
  if (s == "never") return PrependScheme::Never;
  zc::fail("{}: {}.prepend_scheme '{}' is not supported", where, field, s);
}

std::string metaspace_replacement(const json& j, const std::string& where, const std::string& field) {
  const std::string r = get_string(j, "replacement", where, field);
  size_t i = 0;
  if (r.empty() || !utf8_valid(r) || (utf8_next(r, i), i != r.size())) {
    zc::fail("{}: {}.replacement must be one character", where, field);
  }
  return r;
}

// HF pre_tokenizers/metaspace.rs: spaces become the replacement ("▁"), which is also
// prepended (always, or only to the piece at the start of the text), then an optional
// split before every replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> matches;
    for (Piece& p : pieces) {
      std::string s;
      for (char c : p.text) {
        if (c == ' ') {
          s += replacement_;
        } else {
          s += c;
        }
      }
      const bool starts = s.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start))) {
        s.insert(0, replacement_);
      }
      p.text = std::move(s);
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        continue;
      }
      matches.clear();
      for (size_t pos = p.text.find(replacement_); pos != std::string::npos;
           pos = p.text.find(replacement_, pos + replacement_.size())) {
        matches.emplace_back(pos, pos + replacement_.size());
      }
      split_piece(p, matches, Behavior::MergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where, const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j, where, field);
  if (type == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) zc::fail("{}: {}.pretokenizers must be an array", where, field);
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      auto part = make_pre_tokenizer((*it)[i], where, fmt::format("{}.pretokenizers[{}]", field, i));
      if (part) parts.push_back(std::move(part));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    if (!j.contains("pattern")) zc::fail("{}: {}.pattern is missing", where, field);
    return std::make_unique<SplitPreTokenizer>(Pattern(j["pattern"], where, field + ".pattern"),
                                               parse_behavior(j, where, field),
                                               get_bool(j, "invert", false, where, field));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(get_bool(j, "add_prefix_space", true, where, field),
                                                   get_bool(j, "use_regex", true, where, field), where);
  }
  if (type == "Digits") {
    return std::make_unique<DigitsPreTokenizer>(get_bool(j, "individual_digits", false, where, field));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(metaspace_replacement(j, where, field),
                                                   parse_prepend_scheme(j, where, field),
                                                   get_bool(j, "split", true, where, field));
  }
  zc::fail("{}: {} type '{}' is not supported", where, field, type);
}

}  // namespace zc::tok
