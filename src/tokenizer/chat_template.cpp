#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"

namespace zc::tok {

struct ChatTemplate::Impl {
  std::string origin;
  std::string bos_token;
  std::string eos_token;
  jinja::Body body;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::parse(std::string_view source, std::string origin, std::string bos_token,
                                 std::string eos_token) {
  auto impl = std::make_unique<Impl>();
  impl->origin = std::move(origin);
  impl->bos_token = std::move(bos_token);
  impl->eos_token = std::move(eos_token);
  impl->body = jinja::parse_template(jinja::tokenize(source, impl->origin), impl->origin);
  return ChatTemplate(std::move(impl));
}

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("{}: read error", path.string());
  return text.str();
}

// bos_token / eos_token in tokenizer_config.json: a string, an added-token object
// {"content": ...}, or null/absent (then "").
std::string special_token(const nlohmann::json& config, const char* key, const std::string& file) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail("{}: \"{}\" must be a string or an object with a string \"content\"", file, key);
}

}  // namespace

std::optional<ChatTemplate> ChatTemplate::from_dir(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const fs::path config_path = dir / "tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  const bool has_config = fs::exists(config_path);
  if (has_config) {
    try {
      config = nlohmann::json::parse(read_file(config_path));
    } catch (const nlohmann::json::exception& e) {
      fail("{}: malformed JSON: {}", config_path.string(), e.what());
    }
    if (!config.is_object()) fail("{}: expected a JSON object", config_path.string());
  }
  const std::string bos = special_token(config, "bos_token", config_path.string());
  const std::string eos = special_token(config, "eos_token", config_path.string());

  const fs::path jinja_path = dir / "chat_template.jinja";
  if (fs::exists(jinja_path)) return parse(read_file(jinja_path), jinja_path.string(), bos, eos);
  if (!has_config) return std::nullopt;
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  const std::string origin = config_path.string() + " chat_template";
  if (it->is_string()) return parse(it->get<std::string>(), origin, bos, eos);
  if (it->is_array()) {
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template"))
        fail("{}: \"chat_template\" list entries must be {{\"name\", \"template\"}} objects", config_path.string());
      if (entry["name"] == "default") {
        if (!entry["template"].is_string()) fail("{}: the \"default\" chat_template is not a string", config_path.string());
        return parse(entry["template"].get<std::string>(), origin + " (default)", bos, eos);
      }
    }
    return std::nullopt;
  }
  fail("{}: \"chat_template\" must be a string or a list of {{\"name\", \"template\"}}", config_path.string());
}

ChatTemplate ChatTemplate::chatml() {
  static constexpr std::string_view kChatML =
      "{% for message in messages %}"
      "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
      "{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  return parse(kChatML, "chatml template");
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) const {
  jinja::Dict variables;
  variables.set("messages", jinja::Value::from_json(messages));
  variables.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  variables.set("bos_token", jinja::Value(impl_->bos_token));
  variables.set("eos_token", jinja::Value(impl_->eos_token));
  if (!extra.is_null() && !extra.is_object()) fail("{}: render extra variables must be a JSON object", impl_->origin);
  if (extra.is_object())
    for (const auto& [key, value] : extra.items()) variables.set(key, jinja::Value::from_json(value));
  return jinja::render_template(impl_->body, impl_->origin, variables);
}

const std::string& ChatTemplate::origin() const { return impl_->origin; }

}  // namespace zc::tok
