#include "server/openai_logprobs.h"

namespace zc::server {

using nlohmann::json;

namespace {

json bytes_of(const std::string& s) {
  json out = json::array();
  for (const char c : s) out.push_back(int(static_cast<unsigned char>(c)));
  return out;
}

// A logprob as JSON: -inf (a masked alternative) has no JSON number; OpenAI's clients
// read -9999.0 as "impossible", which vLLM sends too.
double finite(double lp) { return lp < -9999.0 ? -9999.0 : lp; }

json chat_entry(int32_t id, double lp, const TokenText& text) {
  const std::string s = text(id);
  return {{"token", s}, {"logprob", finite(lp)}, {"bytes", bytes_of(s)}};
}

}  // namespace

json logprobs_object(Endpoint endpoint, std::span<const engine::TokenLogprob> entries, const TokenText& text,
                     size_t* text_offset) {
  if (endpoint == Endpoint::Chat) {
    json content = json::array();
    for (const engine::TokenLogprob& e : entries) {
      json item = chat_entry(e.id, e.logprob, text);
      json top = json::array();
      for (const auto& [id, lp] : e.top) top.push_back(chat_entry(id, lp, text));
      item["top_logprobs"] = std::move(top);
      content.push_back(std::move(item));
    }
    return {{"content", std::move(content)}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       offsets = json::array();
  size_t offset = text_offset ? *text_offset : 0;
  for (const engine::TokenLogprob& e : entries) {
    const std::string s = text(e.id);
    tokens.push_back(s);
    token_logprobs.push_back(finite(e.logprob));
    json top = json::object();
    for (const auto& [id, lp] : e.top) top[text(id)] = finite(lp);
    top[s] = finite(e.logprob);
    top_logprobs.push_back(std::move(top));
    offsets.push_back(offset);
    offset += s.size();
  }
  if (text_offset) *text_offset = offset;
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(offsets)}};
}

}  // namespace zc::server
