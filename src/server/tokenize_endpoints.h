// POST /tokenize and POST /detokenize, in the shapes of vLLM's and llama.cpp's servers
// (a client written for either works): text, or chat messages through the model's
// template, to token ids, and ids back to text. Requests name their fields in either
// project's spelling:
//   /tokenize   {"prompt" | "content": text, "add_special_tokens" | "add_special": bool
//               (default true), "with_pieces": bool} or {"messages": [...],
//               "add_generation_prompt": bool (default true), "chat_template_kwargs"}
//               -> {"count", "max_model_len", "tokens": ids, or [{"id", "piece"}]
//               with_pieces}
//   /detokenize {"tokens": ids} -> {"prompt": text, "content": text}
// Anything else is an ApiError (400) naming the field.
#pragma once
#include <nlohmann/json.hpp>

#include "server/server.h"

namespace zc::server {

nlohmann::json tokenize_response(const nlohmann::json& body, const Engine& engine, int context);
nlohmann::json detokenize_response(const nlohmann::json& body, const Engine& engine);

}  // namespace zc::server
