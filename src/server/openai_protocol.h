// The request side of the OpenAI-compatible API: JSON bodies of /v1/chat/completions
// and /v1/completions checked and turned into typed requests, and OpenAI's error object.
// Everything a client can get wrong is an ApiError carrying the HTTP status and the
// field it concerns, so the client sees what was wrong and where.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/sampler.h"

namespace zc::server {

// An error of the request (or a feature this server refuses): the HTTP status, the
// field (OpenAI's "param", empty: none) and an optional machine-readable code.
class ApiError : public zc::Error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "")
      : zc::Error(message), status_(status), param_(std::move(param)), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string param_, code_;
};

// OpenAI's {"error": {"message", "type", "param", "code"}}; empty param / code are null.
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = "", const std::string& code = "");

enum class Endpoint { Chat, Completion };

inline constexpr int kMaxChoices = 16;  // "n": at most this many choices per request

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Chat;
  // Chat: the messages (a non-empty list of checked message objects; content given as a
  // list of text parts is joined into one string) and the variables the chat template
  // gets besides them (the members of "chat_template_kwargs"; {} when absent).
  nlohmann::json messages;
  nlohmann::json template_extra = nlohmann::json::object();
  // Completion: the prompt as text (tokenized with special tokens) or as token ids.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_ids;

  std::optional<int> max_tokens;       // absent: the server's default
  // The parsers start from OpenAI's defaults, not the command line's: temperature 1,
  // top_p 1, top_k and min_p off (what a client written for OpenAI expects).
  engine::SamplingParams sampling;
  bool seed_given = false;             // else the server draws one
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  // -1: none; else each token's log probability and this many alternatives (chat:
  // "logprobs": true and "top_logprobs"; completions: "logprobs": n).
  int logprobs = -1;
  int n = 1;                           // choices: generations of the same prompt
  bool ignore_eos = false;             // zipcache extension
  std::optional<std::string> kv;       // zipcache extension: a --kv spec for this request
};

// The body as a JSON object; ApiError 400 for malformed JSON or another type.
nlohmann::json parse_body(const std::string& body);

// Checks every field of a body from parse_body. Throws ApiError (400) naming the field
// for a wrong type, a value out of range, an unknown field, or a feature not supported
// (best_of != 1, tools, echo, ...).
GenerationRequest parse_chat_request(const nlohmann::json& body);
GenerationRequest parse_completion_request(const nlohmann::json& body);

}  // namespace zc::server
