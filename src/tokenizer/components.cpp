// Shared pieces of the component parsers: json accessors, Pattern, the ByteLevel map.
#include <array>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/components.h"

namespace zc::tok {

using nlohmann::json;

std::string component_type(const json& j, const std::string& where, const std::string& field) {
  if (!j.is_object()) zc::fail("{}: {} must be an object", where, field);
  const auto it = j.find("type");
  if (it == j.end() || !it->is_string()) zc::fail("{}: {} has no \"type\"", where, field);
  return it->get<std::string>();
}

std::string get_string(const json& j, const char* key, const std::string& where, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) zc::fail("{}: {}.{} must be a string", where, field, key);
  return it->get<std::string>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& where, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) zc::fail("{}: {}.{} must be true or false", where, field, key);
  return it->get<bool>();
}

Pattern::Pattern(const json& j, const std::string& where, const std::string& field) {
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    literal_ = j["String"].get<std::string>();
    if (literal_.empty()) zc::fail("{}: {}.String must not be empty", where, field);
  } else if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    regex_ = std::make_unique<Regex>(j["Regex"].get<std::string>(), where + ": " + field);
  } else {
    zc::fail("{}: {} must be {{\"String\": ...}} or {{\"Regex\": ...}}", where, field);
  }
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(const std::string& s) const {
  std::vector<std::pair<size_t, size_t>> matches;
  if (regex_) {
    regex_->find_all(s, matches);
    return matches;
  }
  for (size_t pos = s.find(literal_); pos != std::string::npos; pos = s.find(literal_, pos + literal_.size())) {
    matches.emplace_back(pos, pos + literal_.size());
  }
  return matches;
}

std::string replace_all(const std::string& s, const Pattern& pattern, const std::string& content) {
  const auto matches = pattern.find_all(s);
  if (matches.empty()) return s;
  std::string out;
  out.reserve(s.size() + matches.size() * content.size());
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    out.append(s, prev, start - prev);
    out += content;
    prev = end;
  }
  out.append(s, prev, std::string::npos);
  return out;
}

namespace {

// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes
// to U+0100.. in byte order, so that every byte has a visible, non-space character.
struct ByteMap {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 512> to_byte{};
  ByteMap() {
    to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return byte_map().to_char[b]; }

int char_to_byte(char32_t c) { return c < 512 ? byte_map().to_byte[c] : -1; }

}  // namespace zc::tok
