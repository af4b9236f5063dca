// OpenAI's logprobs objects for the engine's per-token log probabilities
// (engine::TokenLogprob: the log-softmax of the raw logits, vLLM's default):
//   chat:        {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token",
//                "logprob", "bytes"}]}]}
//   completions: {"tokens", "token_logprobs", "top_logprobs": [{text: logprob}],
//                "text_offset"}: the legacy shape; each top_logprobs dict holds the
//                alternatives asked for and the sampled token (as vLLM's do).
// A token's text is its own decoding, which for a byte-level vocabulary may be part of
// a UTF-8 character: "bytes" keeps its exact bytes, and the JSON text replaces what is
// not valid UTF-8.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "server/openai_protocol.h"

namespace zc::server {

using TokenText = std::function<std::string(int32_t)>;

// The logprobs object of `entries` for the endpoint. text_offset (completions): the
// byte offset of the first entry's text in the whole completion, advanced past the
// last; a stream keeps it from chunk to chunk.
nlohmann::json logprobs_object(Endpoint endpoint, std::span<const engine::TokenLogprob> entries,
                               const TokenText& text, size_t* text_offset);

}  // namespace zc::server
