// The pipeline components of tokenizer.json, each a faithful port of its HF tokenizers
// counterpart (normalizers/, pre_tokenizers/, processors/, decoders/ of the Rust crate).
// Offsets are not tracked: only the resulting strings and ids matter to us.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/regex.h"

namespace zc::tok {

// A pattern of Replace/Split: {"String": "..."} (literal) or {"Regex": "..."}.
class Pattern {
 public:
  Pattern(const nlohmann::json& j, const std::string& where, const std::string& field);
  // Non-overlapping matches, left to right, as [start, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& s) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// HF NormalizedString::replace: every match of pattern becomes content.
std::string replace_all(const std::string& s, const Pattern& pattern, const std::string& content);

// A piece of text between added tokens, on its way through the pre-tokenizers.
struct Piece {
  std::string text;
  bool at_start;  // it begins at offset 0 of the original text (Metaspace "first")
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its sub-pieces; empty pieces are dropped (as HF does).
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF Decoder::decode_chain; the decoded text is the concatenation of the result.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence (add_special_tokens = true).
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // The id it puts first (the BOS of a template), or -1.
  virtual int32_t leading_special() const { return -1; }
};

// A null json gives nullptr (no component). Unknown or malformed components throw a
// zc::Error naming `where` (the file) and the field path.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where,
                                            const std::string& field = "normalizer");
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where,
                                                 const std::string& field = "pre_tokenizer");
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& where,
                                      const std::string& field = "decoder");
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& where,
                                                   const std::string& field = "post_processor");

// Shared json accessors of the component parsers.
std::string component_type(const nlohmann::json& j, const std::string& where, const std::string& field);
std::string get_string(const nlohmann::json& j, const char* key, const std::string& where, const std::string& field);
bool get_bool(const nlohmann::json& j, const char* key, bool fallback, const std::string& where,
              const std::string& field);

// The GPT-2 byte <-> printable character map of ByteLevel (bytes_to_unicode).
char32_t byte_to_char(unsigned char b);
int char_to_byte(char32_t c);  // -1 when c is not one of the 256 characters

}  // namespace zc::tok
