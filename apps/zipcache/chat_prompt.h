// Conversations to prompt text for `zipcache chat` and `zipcache serve`: the model's
// chat template (or --chat-template FILE), rendered as transformers'
// apply_chat_template does; its text is tokenized without adding special tokens, since
// the template writes BOS itself.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

struct ChatPrompter {
  tok::ChatTemplate chat_template;
  // The model has no template and ChatML stands in (llama.cpp's fallback); then BOS is
  // put in front (our template cannot know the model wants one) and the ChatML markers
  // are stop strings, since a model not trained on them emits them as plain text.
  bool fallback = false;

  std::string bos_text;  // the fallback's BOS, as the tokenizer writes it ("" when none)
  std::vector<std::string> stop;

  // The prompt text, with the generation prompt (the assistant's turn) opened; it is
  // tokenized without adding special tokens (the ones it writes are recognised).
  std::string text(const nlohmann::ordered_json& messages,
                   const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
};

// template_file "" : the model folder's template, else ChatML (a note on stderr when
// `quiet` is false). bos/eos of a --chat-template file come from the tokenizer.
ChatPrompter load_chat_prompter(const std::string& model_dir, const std::string& template_file,
                                const tok::Tokenizer& tokenizer, bool quiet);

}  // namespace zc::app
