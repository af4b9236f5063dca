// Internal state of zc::tok::Tokenizer (shared by tokenizer.cpp and loader.cpp).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/components.h"
#include "tokenizer/tokenizer.h"

namespace zc::tok {

struct Tokenizer::Impl {
  std::string path;  // of tokenizer.json, for messages
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;

  std::vector<AddedToken> added;                 // in file order
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added
  TokenMap added_by_content;
  AddedTokenMatcher raw_matcher;        // tokens with normalized = false, on the raw text
  AddedTokenMatcher normalized_matcher;  // tokens with normalized = true, on normalized text

  int32_t bos = -1;
  std::vector<int32_t> eos;
  bool add_bos = false, add_eos = false;  // tokenizer_config.json add_bos_token / add_eos_token
  int32_t vocab_size = 0;
  bool byte_fallback_decoder = false;  // the decoder chain has ByteFallback

  // Encodes one stretch of text between raw added tokens (normalize, match normalized
  // added tokens, pre-tokenize, BPE).
  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const;
  // The token string decode() uses for id, or nullptr where decode() skips the id.
  const std::string* decoded_token(int32_t id, bool skip_special_tokens) const;
};

// Builds the Impl from parsed tokenizer.json (loader.cpp).
std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(const std::string& path);
// Applies tokenizer_config.json (bos/eos tokens, add_bos/eos_token) and
// generation_config.json (eos_token_id); either path may be empty.
void load_special_config(Tokenizer::Impl& impl, const std::string& config_path, const std::string& generation_path);

}  // namespace zc::tok
