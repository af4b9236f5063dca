#include "server/openai_protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

namespace zc::server {

using nlohmann::json;

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    // nlohmann's message carries the line and column of the fault.
    throw ApiError(400, fmt::format("the body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, fmt::format("the body must be a JSON object, not {}", j.type_name()));
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, fmt::format("'{}': {}", param, message), param);
}

// Readers of one member each. A member that is absent or null counts as not given (the
// OpenAI SDKs send null for options left unset).
const json* member(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int64_t> integer(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = member(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad(name, fmt::format("expected an integer, got {}", v->dump()));
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(hi))
    bad(name, fmt::format("{} is out of range [{}, {}]", v->dump(), lo, hi));
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(name, fmt::format("{} is out of range [{}, {}]", x, lo, hi));
  return x;
}

std::optional<double> number(const json& body, const char* name, double lo, double hi) {
  const json* v = member(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(name, fmt::format("expected a number, got {}", v->dump()));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(name, fmt::format("{} is out of range [{}, {}]", x, lo, hi));
  return x;
}

std::optional<bool> boolean(const json& body, const char* name) {
  const json* v = member(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(name, fmt::format("expected true or false, got {}", v->dump()));
  return v->get<bool>();
}

std::optional<std::string> string(const json& body, const char* name) {
  const json* v = member(body, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad(name, fmt::format("expected a string, got {}", v->dump()));
  return v->get<std::string>();
}

// Fields the server takes, and fields it accepts without acting on them because they
// change nothing in the output (who the user is, storage, tracing). Anything else is
// refused: a misspelt option silently ignored would give a result the client did not ask
// for. Fields whose non-default values are refused are checked in refuse_unsupported.
const std::set<std::string> kCommonFields = {
    "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stream",
    "stream_options", "frequency_penalty", "presence_penalty", "repetition_penalty", "n",
    "logprobs", "logit_bias", "ignore_eos", "kv", "user", "metadata", "store", "service_tier"};
const std::set<std::string> kChatFields = {
    "messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice", "functions",
    "function_call", "parallel_tool_calls", "response_format", "chat_template_kwargs"};
const std::set<std::string> kCompletionFields = {"prompt", "echo", "suffix", "best_of"};

void check_known(const json& body, const std::set<std::string>& endpoint_fields) {
  for (const auto& [key, value] : body.items()) {
    if (!kCommonFields.count(key) && !endpoint_fields.count(key))
      bad(key, "unknown field (see docs for the fields this server takes)");
  }
}

// Options that would change the output in a way this engine cannot give: refused with
// a message that says so, rather than ignored.
void refuse_unsupported(const json& body) {
  if (auto b = integer(body, "best_of", 1, 128); b && *b != 1) bad("best_of", "only 1 is supported");
  if (const json* lb = member(body, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    bad("logit_bias", "not supported");
  for (const char* name : {"tools", "functions"}) {
    if (const json* t = member(body, name); t && !(t->is_array() && t->empty()))
      bad(name, "tool calling is not supported");
  }
  for (const char* name : {"tool_choice", "function_call"}) {
    if (const json* t = member(body, name); t && *t != "none" && *t != "auto")
      bad(name, "tool calling is not supported");
  }
  if (const json* rf = member(body, "response_format")) {
    if (!rf->is_object() || rf->value("type", "") != "text")
      bad("response_format", "only {\"type\": \"text\"} is supported");
  }
  if (auto echo = boolean(body, "echo"); echo && *echo) bad("echo", "not supported");
  if (auto suffix = string(body, "suffix"); suffix && !suffix->empty()) bad("suffix", "not supported");
  for (const char* name : {"user", "service_tier"}) string(body, name);  // type only
  if (const json* md = member(body, "metadata"); md && !md->is_object()) bad("metadata", "expected an object");
  boolean(body, "store");
  boolean(body, "parallel_tool_calls");
}

// Options both endpoints share: sampling, limits, stops, streaming, zipcache's.
void parse_common(const json& body, GenerationRequest& r) {
  string(body, "model");  // any name is answered by the one model (type checked only)
  // max_completion_tokens is the newer name in chat; giving both is ambiguous.
  const bool has_new = member(body, "max_completion_tokens") != nullptr;
  if (has_new && member(body, "max_tokens"))
    bad("max_completion_tokens", "give max_tokens or max_completion_tokens, not both");
  const char* limit_name = has_new ? "max_completion_tokens" : "max_tokens";
  if (auto m = integer(body, limit_name, 1, std::numeric_limits<int>::max())) r.max_tokens = int(*m);

  r.sampling.temperature = 1.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  if (auto t = number(body, "temperature", 0.0, 2.0)) r.sampling.temperature = float(*t);
  if (auto p = number(body, "top_p", 0.0, 1.0)) {
    if (*p == 0.0) bad("top_p", "must be greater than 0");
    r.sampling.top_p = float(*p);
  }
  // -1 is vLLM's "off"; 0 is the engine's.
  if (auto k = integer(body, "top_k", -1, std::numeric_limits<int>::max())) r.sampling.top_k = int(std::max<int64_t>(*k, 0));
  if (auto m = number(body, "min_p", 0.0, 1.0)) r.sampling.min_p = float(*m);
  // OpenAI's additive penalties over the generated tokens (engine::SamplingParams).
  if (auto f = number(body, "frequency_penalty", -2.0, 2.0)) r.sampling.frequency_penalty = float(*f);
  if (auto pp = number(body, "presence_penalty", -2.0, 2.0)) r.sampling.presence_penalty = float(*pp);
  if (auto rp = number(body, "repetition_penalty", 0.0, 10.0)) {
    if (*rp == 0.0) bad("repetition_penalty", "must be greater than 0 (1: off)");
    r.sampling.repeat_penalty = float(*rp);
    r.sampling.repeat_last_n = -1;  // HF and vLLM penalize every token seen
  }
  if (auto s = integer(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    r.sampling.seed = uint64_t(*s);
    r.seed_given = true;
  }

  if (const json* stop = member(body, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) bad("stop", fmt::format("at most 16 stop strings, got {}", stop->size()));
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) bad(fmt::format("stop[{}]", i), "expected a string");
        r.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      bad("stop", fmt::format("expected a string or a list of strings, got {}", stop->dump()));
    }
    for (size_t i = 0; i < r.stop.size(); ++i)
      if (r.stop[i].empty()) bad(stop->is_string() ? "stop" : fmt::format("stop[{}]", i), "a stop string must not be empty");
  }

  r.stream = boolean(body, "stream").value_or(false);
  if (const json* so = member(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "expected an object");
    if (!r.stream) bad("stream_options", "only allowed when stream is true");
    for (const auto& [key, value] : so->items()) {
      if (key != "include_usage") bad("stream_options." + key, "unknown field");
      if (!value.is_boolean()) bad("stream_options.include_usage", "expected true or false");
      r.include_usage = value.get<bool>();
    }
  }
  r.ignore_eos = boolean(body, "ignore_eos").value_or(false);
  if (auto n = integer(body, "n", 1, kMaxChoices)) r.n = int(*n);
  if (auto kv = string(body, "kv")) r.kv = *kv;
  refuse_unsupported(body);
}

// One chat message: a role the templates know, and content as a string (a list of text
// parts is joined: templates expect a string; images and audio are refused).
json check_message(const json& m, size_t i) {
  const std::string where = fmt::format("messages[{}]", i);
  if (!m.is_object()) bad(where, fmt::format("expected an object with role and content, got {}", m.dump()));
  const auto role_it = m.find("role");
  if (role_it == m.end() || !role_it->is_string()) bad(where + ".role", "expected a string");
  const std::string role = role_it->get<std::string>();
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  if (!roles.count(role))
    bad(where + ".role", fmt::format("unknown role '{}' (system, developer, user, assistant or tool)", role));
  json out = m;
  const auto content = m.find("content");
  if (content == m.end() || content->is_null()) {
    // An assistant turn that only called tools has no content; every other needs one.
    if (role != "assistant") bad(where + ".content", "missing");
  } else if (content->is_array()) {
    std::string text;
    for (size_t k = 0; k < content->size(); ++k) {
      const json& part = (*content)[k];
      const std::string pw = fmt::format("{}.content[{}]", where, k);
      if (!part.is_object() || part.value("type", "") != "text")
        bad(pw, "only parts of type \"text\" are supported");
      const auto t = part.find("text");
      if (t == part.end() || !t->is_string()) bad(pw + ".text", "expected a string");
      if (k > 0) text += "\n";
      text += t->get<std::string>();
    }
    out["content"] = text;
  } else if (!content->is_string()) {
    bad(where + ".content", fmt::format("expected a string or a list of text parts, got {}", content->type_name()));
  }
  return out;
}

}  // namespace

GenerationRequest parse_chat_request(const json& body) {
  check_known(body, kChatFields);
  GenerationRequest r;
  r.endpoint = Endpoint::Chat;
  const json* messages = member(body, "messages");
  if (!messages) bad("messages", "missing (a list of {role, content} objects)");
  if (!messages->is_array()) bad("messages", fmt::format("expected a list of messages, got {}", messages->type_name()));
  if (messages->empty()) bad("messages", "the list is empty");
  r.messages = json::array();
  for (size_t i = 0; i < messages->size(); ++i) r.messages.push_back(check_message((*messages)[i], i));
  if (const json* kw = member(body, "chat_template_kwargs")) {
    if (!kw->is_object()) bad("chat_template_kwargs", "expected an object");
    r.template_extra = *kw;
  }
  parse_common(body, r);
  // OpenAI's chat form: "logprobs": true, and "top_logprobs" alternatives (0-20) with it.
  const bool logprobs = boolean(body, "logprobs").value_or(false);
  const auto top = integer(body, "top_logprobs", 0, engine::kMaxTopLogprobs);
  if (top && !logprobs) bad("top_logprobs", "only allowed when logprobs is true");
  if (logprobs) r.logprobs = int(top.value_or(0));
  return r;
}

GenerationRequest parse_completion_request(const json& body) {
  check_known(body, kCompletionFields);
  GenerationRequest r;
  r.endpoint = Endpoint::Completion;
  const json* prompt = member(body, "prompt");
  if (!prompt) bad("prompt", "missing (a string, or a list of token ids)");
  // One prompt per request (n = 1): a string, a list holding one string, or token ids.
  if (prompt->is_string()) {
    r.prompt_text = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt_text = (*prompt)[0].get<std::string>();
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    for (size_t i = 0; i < prompt->size(); ++i) {
      const json& id = (*prompt)[i];
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
        bad(fmt::format("prompt[{}]", i), fmt::format("expected a token id (a non-negative integer), got {}", id.dump()));
      r.prompt_ids.push_back(int32_t(id.get<int64_t>()));
    }
  } else if (prompt->is_array() && prompt->empty()) {
    bad("prompt", "the list is empty");
  } else if (prompt->is_array()) {
    bad("prompt", "one prompt per request: a string, a list of one string, or a list of token ids");
  } else {
    bad("prompt", fmt::format("expected a string or a list of token ids, got {}", prompt->type_name()));
  }
  parse_common(body, r);
  // The legacy form: "logprobs": n alternatives (OpenAI takes up to 5, vLLM 20).
  if (auto n = integer(body, "logprobs", 0, engine::kMaxTopLogprobs)) r.logprobs = int(*n);
  return r;
}

}  // namespace zc::server
