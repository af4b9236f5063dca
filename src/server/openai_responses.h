// The response side of the OpenAI-compatible API: completion objects, stream chunks
// (Server-Sent Events), the model list, and zipcache's "zipcache" extension object with
// the KV cache's memory and timings of the generation.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "server/openai_protocol.h"

namespace zc::server {

// What every object of one response shares.
struct ResponseHead {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;          // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;     // Unix seconds
  std::string model;
};

// A fresh head: a random id with the endpoint's prefix and the current time.
ResponseHead make_head(Endpoint endpoint, const std::string& model);

// OpenAI's finish_reason for the engine's stop reason: "stop" for EOS and stop strings
// (and a cancelled generation, which nobody reads), "length" for the token limit and a
// full context.
std::string finish_reason(const std::string& stop_reason);

// {prompt_tokens, completion_tokens, total_tokens}: the prompt once, the tokens of every
// choice.
nlohmann::json usage(std::span<const engine::GenerationResult> choices);
inline nlohmann::json usage(const engine::GenerationResult& r) { return usage({&r, 1}); }
// {kv, kv_bytes, fp16_kv_bytes, compression_ratio, prefill_seconds, decode_seconds,
//  stop_reason}: the method's label and GenerationResult::memory at the end.
nlohmann::json zipcache_extension(const engine::GenerationResult& r, const std::string& kv_label);

// The whole non-streamed answer: chat.completion or text_completion.
// logprobs: the choice's "logprobs" (openai_logprobs.h; null when not asked for).
nlohmann::json completion(const ResponseHead& head, const engine::GenerationResult& r,
                          const std::string& kv_label, const nlohmann::json& logprobs = nullptr);
// OpenAI's "n": choice i of `choices` at index i, with logprobs[i] (empty: null); the
// zipcache object is choice 0's.
nlohmann::json completion(const ResponseHead& head, std::span<const engine::GenerationResult> choices,
                          const std::string& kv_label, const std::vector<nlohmann::json>& logprobs);

// Stream chunks, in the order they are sent: role (chat only), text pieces, the last
// chunk with finish_reason (and the zipcache extension), the usage chunk (when asked).
// `index`: the choice the chunk belongs to (OpenAI's "n"; each choice's chunks come in
// order, a choice after the one before it ended).
nlohmann::json role_chunk(const ResponseHead& head, int index = 0);
// logprobs: those of the tokens the chunk brings (null when not asked for).
nlohmann::json text_chunk(const ResponseHead& head, const std::string& text, const nlohmann::json& logprobs = nullptr,
                          int index = 0);
nlohmann::json final_chunk(const ResponseHead& head, const engine::GenerationResult& r,
                           const std::string& kv_label, const nlohmann::json& logprobs = nullptr, int index = 0);
nlohmann::json usage_chunk(const ResponseHead& head, std::span<const engine::GenerationResult> choices);
inline nlohmann::json usage_chunk(const ResponseHead& head, const engine::GenerationResult& r) {
  return usage_chunk(head, {&r, 1});
}

// "data: <json>\n\n"; invalid UTF-8 (none is expected) is replaced, never thrown.
std::string sse_event(const nlohmann::json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Compact JSON text, replacing invalid UTF-8 rather than throwing.
std::string dump(const nlohmann::json& j);

// GET /v1/models: the one model.
nlohmann::json model_list(const std::string& model_name, int64_t created, int context);

}  // namespace zc::server
