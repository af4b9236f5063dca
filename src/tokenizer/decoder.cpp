// Decoders of tokenizer.json (HF decoders/): ByteLevel (GPT-2, Llama 3, Qwen), and the
// SentencePiece-style chain Replace("▁" -> " ") / ByteFallback / Fuse / Strip of
// Llama 2, Mistral, TinyLlama; Metaspace for newer exports.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/components.h"
#include "tokenizer/utf8.h"

namespace zc::tok {

using nlohmann::json;

namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// Maps every character back to its byte; a token with a character outside the map keeps
// its own UTF-8 bytes (added tokens such as "<think>" in CJK). The joined bytes are then
// converted as Rust's from_utf8_lossy does, into one string.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const std::string& t : tokens) {
      token_bytes.clear();
      bool all_mapped = true;
      for (size_t i = 0; i < t.size();) {
        const int b = char_to_byte(utf8_next(t, i));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        token_bytes.push_back(static_cast<char>(b));
      }
      bytes += all_mapped ? token_bytes : t;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = replace_all(t, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one U+FFFD
// per byte (HF decoders/byte_fallback.rs).
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      if (utf8_valid(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = parse_hex(t[3], t[4]);
      if (byte >= 0) {
        run.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_hex(char hi, char lo) {
    const int h = hex(hi), l = hex(lo);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& t : tokens) joined += t;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character per token
// (after Fuse there is one token: SentencePiece's leading space of the text).
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t n = 0; n < start_ && begin < end; ++n) {
        size_t next = begin;
        if (utf8_next(t, next) != content_) break;
        begin = next;
      }
      for (size_t n = 0; n < stop_ && end > begin; ++n) {
        size_t prev = 0;
        if (utf8_prev(t, end, prev) != content_) break;
        end = prev;
      }
      t = t.substr(begin, end - begin);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

// HF decoders/metaspace: the replacement becomes a space, except in the first token
// where it is dropped (unless the prepend scheme is "never").
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_first)
      : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && drop_first_)) out += ' ';
          p += replacement_.size();
        } else {
          out += t[p++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_first_;
};

char32_t single_char(const std::string& s, const std::string& where, const std::string& field) {
  size_t i = 0;
  if (s.empty() || !utf8_valid(s)) zc::fail("{}: {} must be one character", where, field);
  const char32_t c = utf8_next(s, i);
  if (i != s.size()) zc::fail("{}: {} must be one character", where, field);
  return c;
}

size_t get_count(const json& j, const char* key, const std::string& where, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) zc::fail("{}: {}.{} must be a count", where, field, key);
  return it->get<size_t>();
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where, const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j, where, field);
  if (type == "Sequence") {
    const auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) zc::fail("{}: {}.decoders must be an array", where, field);
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      auto part = make_decoder((*it)[i], where, fmt::format("{}.decoders[{}]", field, i));
      if (part) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    if (!j.contains("pattern")) zc::fail("{}: {}.pattern is missing", where, field);
    return std::make_unique<ReplaceDecoder>(Pattern(j["pattern"], where, field + ".pattern"),
                                            get_string(j, "content", where, field));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const char32_t content = single_char(get_string(j, "content", where, field), where, field + ".content");
    return std::make_unique<StripDecoder>(content, get_count(j, "start", where, field),
                                          get_count(j, "stop", where, field));
  }
  if (type == "Metaspace") {
    const std::string replacement = get_string(j, "replacement", where, field);
    single_char(replacement, where, field + ".replacement");
    bool drop_first = true;
    const auto scheme = j.find("prepend_scheme");
    if (scheme != j.end() && scheme->is_string()) {
      drop_first = scheme->get<std::string>() != "never";
    } else {
      drop_first = get_bool(j, "add_prefix_space", true, where, field);
    }
    return std::make_unique<MetaspaceDecoder>(replacement, drop_first);
  }
  zc::fail("{}: {} type '{}' is not supported", where, field, type);
}

}  // namespace zc::tok
