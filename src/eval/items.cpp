#include "eval/items.h"

#include <functional>

#include "core/error.h"
#include "engine/generator.h"
#include "engine/perplexity.h"
#include "eval/seed.h"

namespace zc::eval {

int default_max_new(TaskKind kind) {
  switch (kind) {
    case TaskKind::Lines: return 28;
    case TaskKind::Passkey: return 10;
    case TaskKind::Kv: return 10;
    case TaskKind::Vartrack: return 90;
    case TaskKind::Gsm8k: return 256;
    case TaskKind::Jsonl: return 64;
    case TaskKind::Perplexity: return 0;
  }
  return 0;
}

namespace {

// The largest filler length in [0, hi] whose prompt has at most `target` tokens. Token
// counts grow with the filler (up to the noise of where a random cut falls).
PreparedItem fit_to_tokens(const std::function<TaskItem(int)>& make, const tok::Tokenizer& tokenizer,
                           int target, const std::string& what) {
  PreparedItem best;
  int lo = 0, hi = std::max(64, target * 12);
  bool found = false;
  while (lo <= hi) {
    const int mid = lo + (hi - lo) / 2;
    TaskItem item = make(mid);
    std::vector<int32_t> tokens = tokenizer.encode(item.prompt, true);
    if (int(tokens.size()) <= target) {
      best.text = std::move(item), best.tokens = std::move(tokens), found = true;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (!found)
    fail("{}: even without filler the prompt has {} tokens, more than the target of {}", what,
         tokenizer.encode(make(0).prompt, true).size(), target);
  return best;
}

}  // namespace

PreparedItem prepare_item(const EvalPlan& plan, const TaskConfig& task, const tok::Tokenizer& tokenizer,
                          int index, int context) {
  const std::string name = task_name(task.kind);
  const std::string where = fmt::format("{} {} item {}", name, task.params, index);
  PreparedItem p;
  p.item_seed = item_seed(plan.seed, name, index);
  const auto rng = [&] { return Rng(p.item_seed); };
  switch (task.kind) {
    case TaskKind::Lines: {
      if (!plan.words) fail("{}: no word lists loaded", where);
      Rng r = rng();
      p.text = lines_item(*plan.words, r, task.size);
      break;
    }
    case TaskKind::Kv: {
      Rng r = rng();
      p.text = kv_item(r, task.size);
      break;
    }
    case TaskKind::Passkey:
    case TaskKind::Vartrack: {
      const Filler filler = task.filler ? *task.filler : garbage_filler();
      const auto make = [&](int chars) {
        Rng r = rng();
        return task.kind == TaskKind::Passkey ? passkey_item(r, chars) : vartrack_item(filler, r, chars);
      };
      const PreparedItem fitted = fit_to_tokens(make, tokenizer, task.size, where);
      p.text = fitted.text, p.tokens = fitted.tokens;
      break;
    }
    case TaskKind::Gsm8k: {
      const auto& all = *task.gsm8k;
      const size_t at = size_t(task.shots) + size_t(index);
      if (at >= all.size()) fail("{}: the file has only {} problems", where, all.size());
      p.text.prompt = gsm8k_prompt(std::span(all).first(size_t(task.shots)), all[at].question);
      p.text.reference = all[at].solution + " The answer is " + all[at].answer + ".";
      p.text.expected = all[at].answer;
      break;
    }
    case TaskKind::Jsonl: {
      const auto& all = *task.jsonl;
      if (size_t(index) >= all.size()) fail("{}: the file has only {} items", where, all.size());
      p.text.prompt = all[size_t(index)].prompt;
      p.answers = all[size_t(index)].answers;
      p.text.expected = p.answers.front();
      break;
    }
    case TaskKind::Perplexity: {
      const size_t n = size_t(task.ppl_context);
      if ((size_t(index) + 1) * n > task.ppl_tokens->size())
        fail("{}: the text has only {} tokens", where, task.ppl_tokens->size());
      p.tokens.assign(task.ppl_tokens->begin() + long(size_t(index) * n),
                      task.ppl_tokens->begin() + long((size_t(index) + 1) * n));
      if (task.ppl_context > context)
        fail("{}: windows of {} tokens do not fit the context of {}", where, task.ppl_context, context);
      return p;
    }
  }
  if (p.tokens.empty()) p.tokens = tokenizer.encode(p.text.prompt, true);
  if (int(p.tokens.size()) + task.max_new > context)
    fail("{}: the prompt has {} tokens and {} are generated, more than the context of {} (use a "
         "smaller size)",
         where, p.tokens.size(), task.max_new, context);
  return p;
}

ItemRecord run_item(const model::Model& model, const tok::Tokenizer& tokenizer, const TaskConfig& task,
                    const PreparedItem& item, const kv::MethodConfig& method,
                    const engine::DecoderFactory* decoders) {
  ItemRecord r;
  r.resolved = method.label;
  r.item_seed = item.item_seed;
  r.expected = item.text.expected;
  kv::MemoryReport memory;
  if (task.kind == TaskKind::Perplexity) {
    engine::PerplexityOptions o;
    o.context = task.ppl_context;
    o.prefix = task.ppl_prefix;
    o.max_windows = 1;
    const auto res = engine::perplexity(model, method, item.tokens, o, decoders);
    r.nll = res.nll_sum;
    r.scored_tokens = res.scored_tokens;
    r.prompt_tokens = task.ppl_context - int(res.scored_tokens);
    r.generated_tokens = int(res.scored_tokens);
    r.decode_seconds = res.seconds;  // prefill and decode together
    memory = res.memory;
  } else {
    engine::GenerationOptions o;
    o.max_tokens = task.max_new;
    o.context = std::min(model.config().max_position_embeddings, int(item.tokens.size()) + task.max_new + 1);
    if (task.kind == TaskKind::Gsm8k) o.stop = {"\n\n"};
    const auto decoder = decoders ? (*decoders)(method, o.context) : engine::cpu_decoder(model, method, o.context);
    const auto res = engine::generate_with(*decoder, model.config(), &tokenizer, item.tokens, o, o.context);
    r.output = res.text;
    r.stop_reason = res.stop_reason;
    r.prompt_tokens = res.prompt_tokens;
    r.generated_tokens = int(res.tokens.size());
    r.prefill_seconds = res.prefill_seconds;
    r.decode_seconds = res.decode_seconds;
    memory = res.memory;
    const Score s = task.kind == TaskKind::Jsonl ? score_jsonl(res.text, item.answers, task.match)
                                                 : score_output(task.kind, res.text, item.text.expected);
    r.correct = s.correct;
    r.extracted = s.extracted;
  }
  r.ratio = memory.ratio();
  r.bits_per_value = memory.bits_per_value();
  r.cache_bytes = memory.total();
  r.fp16_bytes = memory.fp16_bytes;
  return r;
}

}  // namespace zc::eval
