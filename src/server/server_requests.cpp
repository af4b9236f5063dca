// Requests (server_impl.h): a body made ready to run, its generations (one per choice),
// and the answer, whole or as Server-Sent Events.
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "server/server_impl.h"

namespace zc::server {

using nlohmann::json;

Job Server::Impl::prepare(const json& body, Endpoint endpoint) const {
  Job job;
  job.request = endpoint == Endpoint::Chat ? parse_chat_request(body) : parse_completion_request(body);
  const GenerationRequest& r = job.request;
  if (r.kv) {
    try {
      job.method = kv::parse_method(*r.kv);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'kv': {}", e.what()), "kv");
    }
  } else {
    job.method = engine.default_method;
  }
  job.kv_label = job.method.label.empty() ? kv::method_name(job.method.method) : job.method.label;

  const char* prompt_param = endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (endpoint == Endpoint::Chat) {
    if (!engine.render_chat) throw ApiError(400, "'messages': this server has no chat template; use /v1/completions", "messages");
    std::string text;
    try {
      text = engine.render_chat(r.messages, true, r.template_extra);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'messages': the chat template failed: {}", e.what()), "messages");
    }
    // Templates write BOS and the other special tokens themselves.
    job.prompt = engine.tokenizer->encode(text, /*add_special_tokens=*/false);
    job.chat_text = std::move(text);
  } else if (r.prompt_text) {
    try {
      job.prompt = engine.tokenizer->encode(*r.prompt_text, /*add_special_tokens=*/true);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'prompt': {}", e.what()), "prompt");
    }
  } else {
    for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
      if (r.prompt_ids[i] >= engine.config->vocab_size)
        throw ApiError(400, fmt::format("'prompt[{}]': token {} is outside the vocabulary ({} tokens)", i,
                                        r.prompt_ids[i], engine.config->vocab_size),
                       fmt::format("prompt[{}]", i));
    }
    job.prompt = r.prompt_ids;
  }
  if (job.prompt.empty()) throw ApiError(400, fmt::format("'{}': the prompt has no tokens", prompt_param), prompt_param);
  // The engine needs room for at least one generated token.
  if (int(job.prompt.size()) >= context)
    throw ApiError(400,
                   fmt::format("'{}': the prompt has {} tokens but the context holds {} (at most {} prompt tokens)",
                               prompt_param, job.prompt.size(), context, context - 1),
                   prompt_param, "context_length_exceeded");

  engine::GenerationOptions& o = job.options;
  o.max_tokens = r.max_tokens ? *r.max_tokens : options.default_max_tokens;
  o.context = context;
  o.sampling = r.sampling;
  if (!r.seed_given) {  // OpenAI samples differently each time unless a seed is given
    std::random_device rd;
    o.sampling.seed = (uint64_t(rd()) << 32) ^ rd();
  }
  try {
    o.sampling.validate();
  } catch (const zc::Error& e) {
    throw ApiError(400, e.what());
  }
  o.stop = r.stop;
  if (endpoint == Endpoint::Chat) {
    for (const std::string& s : engine.chat_stop)
      if (std::find(o.stop.begin(), o.stop.end(), s) == o.stop.end()) o.stop.push_back(s);
  }
  o.ignore_eos = r.ignore_eos;
  o.logprobs = r.logprobs;
  job.head = make_head(endpoint, engine.model_name);
  return job;
}

void Server::Impl::failed(const Job& job, const std::exception& e) {
  metrics.failed();
  if (options.log) options.log(fmt::format("a {}-token request failed: {}", job.prompt.size(), e.what()));
}

engine::GenerationResult Server::Impl::generate(Job& job, const engine::TextCallback& on_text,
                                                const std::function<bool()>& client_gone) {
  metrics.started();
  try {
    engine::GenerationResult r = generate_unlogged(job, on_text, client_gone);
    metrics.finished(r);
    return r;
  } catch (const std::exception& e) {
    failed(job, e);
    throw;
  }
}

namespace {

// A ticket's text to on_text as it comes, then its result (the error rethrown).
engine::GenerationResult collect(engine::BatchTicket& ticket, const engine::TextCallback& on_text,
                                 const std::function<bool()>& client_gone) {
  std::string text;
  while (ticket.wait_text(&text)) {
    if (on_text) on_text(text);
    if (client_gone && client_gone()) ticket.cancel();
  }
  return ticket.result();
}

}  // namespace

std::vector<engine::GenerationResult> Server::Impl::generate_choices(Job& job, const Choices& to) {
  const int n = job.request.n;
  std::vector<Job> jobs(size_t(n), job);
  for (int i = 0; i < n; ++i) {
    Job& j = jobs[size_t(i)];
    j.options.sampling.seed = job.options.sampling.seed + uint64_t(i);
    if (to.on_logprob && j.options.logprobs >= 0)
      j.options.on_logprob = [&to, i](const engine::TokenLogprob& e) { to.on_logprob(i, e); };
  }
  const auto text_for = [&to](int i) -> engine::TextCallback {
    if (!to.on_text) return {};
    return [&to, i](const std::string& t) { to.on_text(i, t); };
  };
  std::vector<engine::GenerationResult> results;
  if (!scheduler) {
    for (int i = 0; i < n; ++i) {
      results.push_back(generate(jobs[size_t(i)], text_for(i), to.client_gone));
      if (to.on_end) to.on_end(i, results.back());
    }
    return results;
  }
  // A batch runs the choices side by side: all are queued at once, and their text is
  // taken in choice order (a later choice's waits in its ticket). One that fails ends
  // the others and the request. The scheduler's stop() cancels what runs when the
  // server stops.
  std::vector<std::shared_ptr<engine::BatchTicket>> tickets;
  std::exception_ptr error;
  try {
    for (const Job& j : jobs) {
      tickets.push_back(scheduler->submit(engine::BatchJob{j.prompt, j.method, j.options}));
      metrics.started();
    }
  } catch (const std::exception& e) {  // refused (the server is stopping): counted as a failed request
    metrics.started();
    failed(job, e);
    error = std::current_exception();
  }
  for (size_t i = 0; i < tickets.size(); ++i) {
    if (error) tickets[i]->cancel();
    try {
      results.push_back(collect(*tickets[i], error ? engine::TextCallback{} : text_for(int(i)), to.client_gone));
      metrics.finished(results.back());
      if (!error && to.on_end) to.on_end(int(i), results.back());
    } catch (const std::exception& e) {
      failed(job, e);
      if (!error) error = std::current_exception();
      for (auto& t : tickets) t->cancel();
    }
  }
  if (error) std::rethrow_exception(error);
  return results;
}

engine::GenerationResult Server::Impl::generate_unlogged(Job& job, const engine::TextCallback& on_text,
                                                         const std::function<bool()>& client_gone) {
  std::lock_guard lock(engine_mutex);
  ++computing;
  struct Done {
    std::atomic<int>& n;
    ~Done() { --n; }
  } done{computing};
  job.options.cancelled = [&] { return stopping.load() || (client_gone && client_gone()); };
  if (options.prompt_cache) {
    // The last request's sequence stays (llama.cpp's cache_prompt): a request whose
    // prompt goes on from it, as a chat client's does when it sends the conversation
    // again with one more turn, computes only its new tokens (engine/conversation.h).
    // One sequence is kept, of the last request's KV method; another method's request
    // frees it first (its KV memory, a GPU session's runner).
    if (!conversation || !(conversation_method == job.method)) {
      conversation.reset();
      conversation = std::make_unique<engine::Conversation>(engine.make_decoder, job.method, context,
                                                            *engine.config, engine.tokenizer);
      conversation_method = job.method;
    }
    if (job.request.endpoint == Endpoint::Chat) return conversation->reply(job.chat_text, job.options, on_text);
    return conversation->reply(std::span<const int32_t>(job.prompt), job.options, on_text);
  }
  // Made per request and released before the lock: a request holds KV memory only while it runs.
  const std::unique_ptr<engine::Decoder> decoder = engine.make_decoder(job.method, context);
  if (!decoder) fail("the decoder factory gave no decoder for --kv {}", job.kv_label);
  return engine::generate_with(*decoder, *engine.config, engine.tokenizer, job.prompt, job.options, context,
                               on_text);
}

void Server::Impl::answer(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  auto job = std::make_shared<Job>(prepare(parse_body(req.body), endpoint));
  if (job->request.stream) return stream(res, std::move(job));
  const std::vector<engine::GenerationResult> results = generate_choices(*job, Choices{});
  const TokenText text_of = token_text();
  std::vector<json> logprobs;
  for (const engine::GenerationResult& r : results) {
    logprobs.push_back(job->options.logprobs >= 0 ? logprobs_object(endpoint, r.logprobs, text_of, nullptr)
                                                  : json(nullptr));
  }
  send_json(res, completion(job->head, results, job->kv_label, logprobs));
}

TokenText Server::Impl::token_text() const {
  const tok::Tokenizer* tokenizer = engine.tokenizer;
  return [tokenizer](int32_t id) { return tokenizer ? tokenizer->decode({id}, false) : std::to_string(id); };
}

// Server-Sent Events through httplib's chunked provider, which runs after the handler
// returned (the 200 and headers are already sent), so every failure from here on is
// reported in the stream as an error event, and nothing may throw out of it: the
// worker thread would end the process.
void Server::Impl::stream(httplib::Response& res, std::shared_ptr<Job> job) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [this, job](size_t, httplib::DataSink& sink) {
    bool gone = false;  // a failed write: the client went away
    const auto send = [&](const std::string& s) {
      if (!gone && !sink.write(s.data(), s.size())) gone = true;
    };
    const ResponseHead& head = job->head;
    // Log probabilities come from the sampling thread (in a batch, not this one) before
    // their token's text; each text chunk takes those of its choice that arrived before
    // it, and the choice's last chunk what is left (tokens a stop string cut).
    const size_t n = size_t(job->request.n);
    std::mutex logprobs_mutex;
    std::vector<std::vector<engine::TokenLogprob>> pending(n);
    std::vector<size_t> text_offset(n, 0);
    const TokenText text_of = token_text();
    const auto take_logprobs = [&](int i) -> json {
      if (job->options.logprobs < 0) return nullptr;
      std::lock_guard lock(logprobs_mutex);
      json out = logprobs_object(head.endpoint, pending[size_t(i)], text_of, &text_offset[size_t(i)]);
      pending[size_t(i)].clear();
      return out;
    };
    // Each choice's chunks in order (chat: its role first), one choice after another.
    int current = -1;
    const auto open_choice = [&](int i) {
      if (i == current) return;
      current = i;
      if (head.endpoint == Endpoint::Chat) send(sse_event(role_chunk(head, i)));
    };
    Choices to;
    to.on_text = [&](int i, const std::string& text) {
      open_choice(i);
      send(sse_event(text_chunk(head, text, take_logprobs(i), i)));
    };
    to.on_logprob = [&](int i, const engine::TokenLogprob& e) {
      std::lock_guard lock(logprobs_mutex);
      pending[size_t(i)].push_back(e);
    };
    to.on_end = [&](int i, const engine::GenerationResult& r) {
      open_choice(i);
      send(sse_event(final_chunk(head, r, job->kv_label, take_logprobs(i), i)));
    };
    to.client_gone = [&] { return gone; };
    try {
      open_choice(0);
      const std::vector<engine::GenerationResult> results = generate_choices(*job, to);
      if (job->request.include_usage) send(sse_event(usage_chunk(head, results)));
    } catch (const zc::Error& e) {
      send(sse_event(error_body(e.what(), "invalid_request_error")));
    } catch (const std::exception& e) {
      send(sse_event(error_body(fmt::format("internal error: {}", e.what()), "server_error")));
    } catch (...) {
      send(sse_event(error_body("internal error", "server_error")));
    }
    send(kSseDone);
    if (gone) return false;  // httplib drops the connection
    sink.done();
    return true;
  });
}

}  // namespace zc::server
