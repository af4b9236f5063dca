#include "chat_prompt.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "core/error.h"

namespace zc::app {

std::string ChatPrompter::text(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& extra) const {
  return bos_text + chat_template.render(messages, /*add_generation_prompt=*/true, extra);
}

ChatPrompter load_chat_prompter(const std::string& model_dir, const std::string& template_file,
                                const tok::Tokenizer& tokenizer, bool quiet) {
  const auto token_text = [&](int32_t id) {
    return id >= 0 ? tokenizer.id_to_token(id).value_or("") : std::string();
  };
  if (!template_file.empty()) {
    std::ifstream in(template_file, std::ios::binary);
    if (!in) fail("--chat-template {}: cannot read the file", template_file);
    const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto& eos = tokenizer.eos_ids();
    return {tok::ChatTemplate::parse(source, template_file, token_text(tokenizer.bos_id()),
                                     eos.empty() ? "" : token_text(eos.front())),
            false, "", {}};
  }
  if (auto found = tok::ChatTemplate::from_dir(model_dir)) return {std::move(*found), false, "", {}};
  if (!quiet)
    fmt::print(stderr, "note: {} has no chat template; using ChatML (give one with --chat-template FILE)\n",
               model_dir);
  return {tok::ChatTemplate::chatml(), true, token_text(tokenizer.bos_id()), {"<|im_end|>", "<|im_start|>"}};
}

}  // namespace zc::app
