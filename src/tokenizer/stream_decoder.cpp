// Streaming detokenization, as HF tokenizers' DecodeStream (tokenizer/mod.rs,
// step_decode_stream): keep the ids of the last emitted chunk as context, decode the
// context plus the new ids, and emit what follows the context's own text once it does
// not end in U+FFFD (an incomplete UTF-8 sequence, e.g. the first bytes of an emoji
// split over byte tokens).
//
// Why a context: decoders act on position. SentencePiece's Strip removes the leading
// space of the whole text, Metaspace drops "▁" in the first token; decoding new ids
// alone would apply those rules again mid-text. With the context in front, the rule hits
// the context (whose text was already emitted) exactly as it does in the full decode.
#include "tokenizer/tokenizer.h"

#include "tokenizer/tokenizer_impl.h"


namespace zc::tok {

namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

bool is_byte_token(const std::string& t) {  // <0xNN>, as HF's ByteFallback reads it
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) && hex(t[4]);
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tok_(&tokenizer), skip_special_(skip_special_tokens) {}

void StreamDecoder::reset() {
  ids_.clear();
  prefix_.clear();
  prefix_count_ = 0;
}

std::string StreamDecoder::step(int32_t id) {
  ids_.push_back(id);
  if (tok_->impl_->byte_fallback_decoder) {
    // ByteFallback turns a whole run of byte tokens into U+FFFDs when the run is not valid
    // UTF-8, so a run that is valid so far may still change: wait for its end.
    // (Skipped ids do not end a run: look at the last token decode() keeps.)
    for (auto it = ids_.rbegin(); it != ids_.rend(); ++it) {
      if (const std::string* token = tok_->impl_->decoded_token(*it, skip_special_)) {
        if (is_byte_token(*token)) return {};
        break;
      }
    }
  }
  const std::string text = tok_->decode(ids_, skip_special_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text)) return {};  // hold back
  std::string chunk;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    chunk = text.substr(prefix_.size());
  } else {
    // Not seen with the supported decoders; emit what follows the common part, cut at a
    // character boundary so the chunk stays valid UTF-8.
    size_t common = 0;
    while (common < prefix_.size() && text[common] == prefix_[common]) ++common;
    while (common > 0 && (static_cast<unsigned char>(text[common]) & 0xC0) == 0x80) --common;
    chunk = text.substr(common);
  }
  // The ids just emitted become the context of the next step.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_count_));
  prefix_ = tok_->decode(ids_, skip_special_);
  prefix_count_ = ids_.size();
  return chunk;
}

std::string StreamDecoder::flush() {
  std::string chunk;
  if (ids_.size() > prefix_count_) {
    const std::string text = tok_->decode(ids_, skip_special_);
    if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0) {
      chunk = text.substr(prefix_.size());
    }
  }
  reset();
  return chunk;
}

}  // namespace zc::tok
