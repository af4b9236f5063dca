#include "server/tokenize_endpoints.h"

#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "server/openai_protocol.h"

namespace zc::server {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw ApiError(400, fmt::format("'{}': {}", field, why), field);
}

void check_fields(const json& body, const std::set<std::string>& known) {
  if (!body.is_object()) throw ApiError(400, "the body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (!known.count(key)) bad(key, "unknown field");
  }
}

// A boolean member under any of `names` (vLLM's and llama.cpp's spellings; null or
// absent: `fallback`).
bool flag(const json& body, std::initializer_list<const char*> names, bool fallback) {
  for (const char* name : names) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_boolean()) bad(name, fmt::format("expected true or false, got {}", it->dump()));
    return it->get<bool>();
  }
  return fallback;
}

}  // namespace

json tokenize_response(const json& body, const Engine& engine, int context) {
  check_fields(body, {"model", "prompt", "content", "add_special_tokens", "add_special", "with_pieces", "messages",
                      "add_generation_prompt", "chat_template_kwargs"});
  const tok::Tokenizer& tokenizer = *engine.tokenizer;
  const bool has_messages = body.contains("messages") && !body["messages"].is_null();
  std::vector<int32_t> ids;
  if (has_messages) {
    for (const char* name : {"prompt", "content", "add_special_tokens", "add_special"}) {
      if (body.contains(name)) bad(name, "give either messages or a prompt, not both");
    }
    // The messages are checked as a chat request checks them.
    json chat = {{"messages", body["messages"]}};
    if (body.contains("chat_template_kwargs")) chat["chat_template_kwargs"] = body["chat_template_kwargs"];
    const GenerationRequest r = parse_chat_request(chat);
    if (!engine.render_chat) bad("messages", "this server has no chat template");
    const bool generation_prompt = flag(body, {"add_generation_prompt"}, true);
    std::string text;
    try {
      text = engine.render_chat(r.messages, generation_prompt, r.template_extra);
    } catch (const zc::Error& e) {
      bad("messages", fmt::format("the chat template failed: {}", e.what()));
    }
    ids = tokenizer.encode(text, /*add_special_tokens=*/false);  // the template writes BOS
  } else {
    const char* field = body.contains("prompt") ? "prompt" : "content";
    const auto it = body.find(field);
    if (it == body.end() || it->is_null()) bad("prompt", "missing (text to tokenize, or messages)");
    if (!it->is_string()) bad(field, fmt::format("expected a string, got {}", it->type_name()));
    const bool special = flag(body, {"add_special_tokens", "add_special"}, true);
    try {
      ids = tokenizer.encode(it->get<std::string>(), special);
    } catch (const zc::Error& e) {
      bad(field, e.what());
    }
  }
  json tokens = json::array();
  const bool pieces = flag(body, {"with_pieces"}, false);
  for (const int32_t id : ids) {
    if (pieces)
      tokens.push_back({{"id", id}, {"piece", tokenizer.decode({id}, false)}});
    else
      tokens.push_back(id);
  }
  return {{"count", ids.size()}, {"max_model_len", context}, {"tokens", std::move(tokens)}};
}

json detokenize_response(const json& body, const Engine& engine) {
  check_fields(body, {"model", "tokens"});
  const auto it = body.find("tokens");
  if (it == body.end() || it->is_null()) bad("tokens", "missing (a list of token ids)");
  if (!it->is_array()) bad("tokens", fmt::format("expected a list of token ids, got {}", it->type_name()));
  std::vector<int32_t> ids;
  const int64_t vocab = engine.config ? engine.config->vocab_size : engine.tokenizer->vocab_size();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& id = (*it)[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab)
      bad(fmt::format("tokens[{}]", i), fmt::format("expected a token id in [0, {}), got {}", vocab, id.dump()));
    ids.push_back(int32_t(id.get<int64_t>()));
  }
  const std::string text = engine.tokenizer->decode(ids, /*skip_special_tokens=*/false);
  return {{"prompt", text}, {"content", text}};
}

}  // namespace zc::server
