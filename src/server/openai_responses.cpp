#include "server/openai_responses.h"

#include <chrono>
#include <mutex>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace zc::server {

using nlohmann::json;

namespace {

std::string random_hex(int digits) {
  // One generator for the process, seeded once: ids only need to differ, and
  // random_device per call would be slow.
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex);
  std::string out;
  while (int(out.size()) < digits) out += fmt::format("{:016x}", rng());
  out.resize(size_t(digits));
  return out;
}

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::Completion) return "text_completion";  // OpenAI names chunks the same
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json base(const ResponseHead& head, bool chunk) {
  return {{"id", head.id}, {"object", object_name(head.endpoint, chunk)}, {"created", head.created},
          {"model", head.model}};
}

// One choice of a chunk: chat carries a delta, completions the text itself.
json chunk_choice(const ResponseHead& head, const json& delta_or_text, const json& finish, const json& logprobs,
                  int index) {
  json c = {{"index", index}};
  if (head.endpoint == Endpoint::Chat)
    c["delta"] = delta_or_text;
  else
    c["text"] = delta_or_text;
  c["logprobs"] = logprobs;
  c["finish_reason"] = finish;
  return c;
}

}  // namespace

ResponseHead make_head(Endpoint endpoint, const std::string& model) {
  ResponseHead h;
  h.endpoint = endpoint;
  h.id = (endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + random_hex(24);
  h.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  h.model = model;
  return h;
}

std::string finish_reason(const std::string& stop_reason) {
  if (stop_reason == "max tokens" || stop_reason == "context full") return "length";
  return "stop";
}

json usage(std::span<const engine::GenerationResult> choices) {
  if (choices.empty()) return {{"prompt_tokens", 0}, {"completion_tokens", 0}, {"total_tokens", 0}};
  const engine::GenerationResult& r = choices.front();
  int completion = 0;
  for (const auto& c : choices) completion += int(c.tokens.size());
  return {{"prompt_tokens", r.prompt_tokens}, {"completion_tokens", completion},
          {"total_tokens", r.prompt_tokens + completion},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_prompt_tokens}}}};
}

json zipcache_extension(const engine::GenerationResult& r, const std::string& kv_label) {
  return {{"kv", kv_label},
          {"kv_bytes", r.memory.total()},
          {"fp16_kv_bytes", r.memory.fp16_bytes},
          {"compression_ratio", r.memory.ratio()},
          {"prefill_seconds", r.prefill_seconds},
          {"decode_seconds", r.decode_seconds},
          {"stop_reason", r.stop_reason}};
}

json completion(const ResponseHead& head, const engine::GenerationResult& r, const std::string& kv_label,
               const json& logprobs) {
  return completion(head, {&r, 1}, kv_label, std::vector<json>{logprobs});
}

json completion(const ResponseHead& head, std::span<const engine::GenerationResult> choices,
                const std::string& kv_label, const std::vector<json>& logprobs) {
  if (choices.empty()) throw std::invalid_argument("a completion of no choices");
  json out = base(head, false);
  out["choices"] = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const engine::GenerationResult& r = choices[i];
    json choice = {{"index", int(i)}};
    if (head.endpoint == Endpoint::Chat)
      choice["message"] = {{"role", "assistant"}, {"content", r.text}};
    else
      choice["text"] = r.text;
    choice["logprobs"] = i < logprobs.size() ? logprobs[i] : json(nullptr);
    choice["finish_reason"] = finish_reason(r.stop_reason);
    out["choices"].push_back(std::move(choice));
  }
  out["usage"] = usage(choices);
  out["zipcache"] = zipcache_extension(choices.front(), kv_label);
  return out;
}

json role_chunk(const ResponseHead& head, int index) {
  json out = base(head, true);
  out["choices"] = json::array({chunk_choice(head, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr, index)});
  return out;
}

json text_chunk(const ResponseHead& head, const std::string& text, const json& logprobs, int index) {
  json out = base(head, true);
  const json payload = head.endpoint == Endpoint::Chat ? json{{"content", text}} : json(text);
  out["choices"] = json::array({chunk_choice(head, payload, nullptr, logprobs, index)});
  return out;
}

json final_chunk(const ResponseHead& head, const engine::GenerationResult& r, const std::string& kv_label,
                 const json& logprobs, int index) {
  json out = base(head, true);
  const json payload = head.endpoint == Endpoint::Chat ? json::object() : json("");
  out["choices"] = json::array({chunk_choice(head, payload, finish_reason(r.stop_reason), logprobs, index)});
  out["zipcache"] = zipcache_extension(r, kv_label);
  return out;
}

json usage_chunk(const ResponseHead& head, std::span<const engine::GenerationResult> choices) {
  // OpenAI's shape: no choices, the usage of the whole request.
  json out = base(head, true);
  out["choices"] = json::array();
  out["usage"] = usage(choices);
  return out;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump(j) + "\n\n"; }

json model_list(const std::string& model_name, int64_t created, int context) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model_name},
                                 {"object", "model"},
                                 {"created", created},
                                 {"owned_by", "zipcache"},
                                 {"max_model_len", context}}})}};
}

}  // namespace zc::server
