// Encode and decode with the HF tokenizers pipeline (tokenizer/mod.rs encode_single_sequence,
// decode): added tokens are split off the raw text first, each stretch between them is
// normalized on its own, then pre-tokenized and run through BPE.
#include <filesystem>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace zc::tok {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json_path, const std::string& tokenizer_config_path) {
  auto impl = load_tokenizer_json(tokenizer_json_path);
  load_special_config(*impl, tokenizer_config_path, "");
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_dir(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const fs::path json_path = dir / "tokenizer.json";
  if (!fs::is_regular_file(json_path)) zc::fail("{}: no tokenizer.json in this folder", model_dir);
  auto impl = load_tokenizer_json(json_path.string());
  const fs::path config = dir / "tokenizer_config.json", generation = dir / "generation_config.json";
  load_special_config(*impl, fs::is_regular_file(config) ? config.string() : "",
                      fs::is_regular_file(generation) ? generation.string() : "");
  return Tokenizer(std::move(impl));
}

void Tokenizer::Impl::encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const {
  std::string normalized(text);
  if (normalizer) normalizer->normalize(normalized);
  std::vector<Piece> pieces;
  if (normalized_matcher.empty()) {
    if (!normalized.empty()) pieces.push_back(Piece{std::move(normalized), at_start});
  } else {
    // Added tokens with normalized = true are found in the normalized text; each run of
    // pieces between them is pre-tokenized on its own, in order.
    for (const TextSplit& sp : normalized_matcher.split(normalized, added)) {
      if (sp.token >= 0) {
        if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
        for (const Piece& p : pieces) model->tokenize(p.text, ids);
        pieces.clear();
        ids.push_back(added[static_cast<size_t>(sp.token)].id);
      } else {
        pieces.push_back(Piece{normalized.substr(sp.start, sp.end - sp.start), at_start && sp.start == 0});
      }
    }
  }
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
  for (const Piece& p : pieces) model->tokenize(p.text, ids);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const size_t bad = utf8_invalid_at(text);
  if (bad != std::string_view::npos) zc::fail("tokenizer: the text to encode is not valid UTF-8 (byte {})", bad);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (impl_->raw_matcher.empty()) {
    if (!text.empty()) impl_->encode_segment(text, true, ids);
  } else {
    for (const TextSplit& sp : impl_->raw_matcher.split(text, impl_->added)) {
      if (sp.token >= 0) {
        ids.push_back(impl_->added[static_cast<size_t>(sp.token)].id);
      } else {
        impl_->encode_segment(text.substr(sp.start, sp.end - sp.start), sp.start == 0, ids);
      }
    }
  }
  if (add_special_tokens) {
    if (impl_->post_processor) impl_->post_processor->process(ids);
    // tokenizer_config.json add_bos_token / add_eos_token (as transformers' Llama
    // tokenizers do), when the post-processor did not already add them.
    if (impl_->add_bos && (ids.empty() || ids.front() != impl_->bos)) ids.insert(ids.begin(), impl_->bos);
    if (impl_->add_eos && (ids.empty() || ids.back() != impl_->eos.front())) ids.push_back(impl_->eos.front());
  }
  return ids;
}

const std::string* Tokenizer::Impl::decoded_token(int32_t id, bool skip_special_tokens) const {
  const auto it = added_by_id.find(id);
  if (it != added_by_id.end()) {
    const AddedToken& t = added[it->second];
    return skip_special_tokens && t.special ? nullptr : &t.content;
  }
  return model->id_to_token(id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const std::string* token = impl_->decoded_token(id, skip_special_tokens)) tokens.push_back(*token);
  }
  std::string text;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    for (const std::string& t : tokens) text += t;
  } else {  // HF joins the tokens with spaces when there is no decoder
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const auto added = impl_->added_by_id.find(id);
  if (added != impl_->added_by_id.end()) return impl_->added[added->second].content;
  if (const std::string* token = impl_->model->id_to_token(id)) return *token;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
const std::vector<int32_t>& Tokenizer::eos_ids() const { return impl_->eos; }

bool Tokenizer::is_special(int32_t id) const {
  const auto added = impl_->added_by_id.find(id);
  return added != impl_->added_by_id.end() && impl_->added[added->second].special;
}

}  // namespace zc::tok
