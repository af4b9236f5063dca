// Chat templates: the Jinja templates Hugging Face model folders ship to turn a
// conversation (a list of {role, content} messages) into the exact prompt text the model
// was trained on. transformers renders them with Jinja2; this is a Jinja interpreter of
// the subset those templates use (DESIGN.md, "src/tokenizer"), checked against
// transformers' renders in ../shared/testdata/tokenizers/*/chat.json.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace zc::tok {

class ChatTemplate {
 public:
  // Parses Jinja source. `origin` names it in errors (a file path, or
  // "tokenizer_config.json chat_template"). A syntax error is a zc::Error that says
  // origin:line:column and what was expected.
  static ChatTemplate parse(std::string_view source, std::string origin, std::string bos_token = "",
                            std::string eos_token = "");
  // The model folder's template: <dir>/chat_template.jinja, else tokenizer_config.json's
  // "chat_template" (a string, or a list of {"name", "template"}: the one named
  // "default"), with bos_token / eos_token from tokenizer_config.json (a string or an
  // added-token object with "content"). nullopt when the folder has none.
  static std::optional<ChatTemplate> from_dir(const std::string& model_dir);
  // ChatML (<|im_start|>role\ncontent<|im_end|>\n), what llama.cpp falls back to for a
  // model without a template.
  static ChatTemplate chatml();

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders `messages` (a JSON array of objects with "role" and "content", and whatever
  // else the template reads, e.g. "tool_calls") with add_generation_prompt, bos_token,
  // eos_token and every member of `extra` (e.g. "tools", "enable_thinking") as
  // variables. A runtime error (raise_exception(), an unsupported filter, a type error)
  // is a zc::Error naming origin:line. Thread-safe (const).
  // ordered_json keeps the caller's key order, which tojson prints (a tool's schema as
  // the client wrote it, as Python dicts keep it); a plain nlohmann::json converts to it
  // with its keys sorted.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& origin() const;

  struct Impl;

 private:
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zc::tok
