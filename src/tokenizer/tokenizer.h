// Hugging Face tokenizer.json: loading, encoding and decoding with the exact ids and
// text of HF tokenizers (the Rust library), for the BPE models of Llama 2/3, Mistral,
// TinyLlama, Qwen2/3, GPT-2 and SmolLM (DESIGN.md, "src/tokenizer").
//
// Pipeline of encode (as in HF): split the text on added tokens -> normalizer ->
// pre-tokenizer -> BPE model -> post-processor (BOS etc., only with add_special_tokens).
// Pipeline of decode: ids -> token strings -> decoder chain -> text.
//
// Supported components (anything else is a zc::Error naming the component and file):
//   model          BPE (merges as "a b" strings or [a, b] pairs, byte_fallback, unk,
//                  fuse_unk, ignore_merges, continuing_subword_prefix, end_of_word_suffix)
//   normalizer     Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Strip
//   pre_tokenizer  Sequence, Split (String or Regex), ByteLevel, Digits, Metaspace
//   post_processor TemplateProcessing, ByteLevel, Sequence, BertProcessing, RobertaProcessing
//   decoder        Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zc::tok {

class Tokenizer {
 public:
  // Reads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json (bos_token,
  // eos_token, add_bos_token, add_eos_token) and <dir>/generation_config.json
  // (eos_token_id, one id or a list: further end-of-sequence ids).
  static Tokenizer from_dir(const std::string& model_dir);
  // config_path may be empty (no tokenizer_config.json).
  static Tokenizer from_files(const std::string& tokenizer_json_path,
                              const std::string& tokenizer_config_path = "");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Added/special tokens written in the text are recognised as HF does (always, also
  // without add_special_tokens). add_special_tokens applies the post-processor
  // (e.g. the BOS of Llama 2), and then add_bos_token/add_eos_token of
  // tokenizer_config.json when they are true and the post-processor did not already.
  // The text must be valid UTF-8 (zc::Error otherwise). Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // The text of ids as HF decode() gives it. Ids that no token has are skipped (as HF).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // added tokens first
  std::optional<std::string> id_to_token(int32_t id) const;
  // One past the largest id of the model vocabulary and the added tokens (the number of
  // logits a matching model has at least).
  int32_t vocab_size() const;
  // -1 when the tokenizer has none. The BOS comes from tokenizer_config.json, else from
  // the first special token of a TemplateProcessing template.
  int32_t bos_id() const;
  // tokenizer_config.json eos_token, then generation_config.json eos_token_id; may be empty.
  const std::vector<int32_t>& eos_ids() const;
  bool is_special(int32_t id) const;  // an added token marked "special"

  struct Impl;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenizer: feed ids one at a time and get only text that is complete.
// The concatenation of every step() and a final flush() equals tokenizer.decode(ids).
// It re-decodes a short window of ids behind the last emitted boundary (as HF
// DecodeStream does), so decoder rules that depend on position (SentencePiece's
// leading-space strip, Metaspace) act exactly as in the full decode; a chunk that would
// end in an incomplete UTF-8 sequence (seen as a trailing U+FFFD) is held back until a
// later id completes it, and so is a run of <0xNN> byte tokens until it ends (HF's
// ByteFallback judges a run as a whole). Every returned chunk is valid UTF-8.
class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string step(int32_t id);
  // What is still held back (e.g. a truly invalid byte sequence at the end), as the full
  // decode would show it; the decoder is then reset.
  std::string flush();
  void reset();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // the window: context ids, then ids not yet emitted
  std::string prefix_;        // decode of the context ids ids_[0, prefix_count_)
  size_t prefix_count_ = 0;
};

}  // namespace zc::tok
