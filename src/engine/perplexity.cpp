#include "engine/perplexity.h"

#include <chrono>
#include <cmath>

#include "core/error.h"

namespace zc::engine {

double PerplexityResult::perplexity() const {
  return scored_tokens ? std::exp(nll_sum / double(scored_tokens)) : NAN;
}

double token_nll(std::span<const float> logits, int32_t target) {
  if (target < 0 || size_t(target) >= logits.size())
    fail("token {} is outside the model's vocabulary of {}", target, logits.size());
  double mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, double(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(double(x) - mx);
  return -(double(logits[size_t(target)]) - mx - std::log(sum));
}

int check_perplexity_options(const model::Model& model, size_t n_tokens, const PerplexityOptions& o) {
  if (o.context < 2) fail("--ctx must be at least 2, got {}", o.context);
  if (o.context > model.config().max_position_embeddings)
    fail("--ctx {} is larger than the model's max_position_embeddings {}", o.context,
         model.config().max_position_embeddings);
  const int prefix = o.prefix > 0 ? o.prefix : o.context / 2;
  if (prefix >= o.context) fail("--prefix {} must be smaller than --ctx {}", prefix, o.context);
  if (n_tokens < size_t(o.context))
    fail("the text has {} tokens, fewer than one window of --ctx {}", n_tokens, o.context);
  return prefix;
}

PerplexityResult perplexity(const model::Model& model, const kv::MethodConfig& method,
                            std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const DecoderFactory* decoders) {
  const int prefix = check_perplexity_options(model, tokens.size(), o);
  const size_t windows = tokens.size() / size_t(o.context);

  PerplexityResult result;
  const auto start = std::chrono::steady_clock::now();
  const size_t count = o.max_windows > 0 ? std::min(windows, size_t(o.max_windows)) : windows;
  for (size_t w = 0; w < count; ++w) {
    const auto window = tokens.subspan(w * size_t(o.context), size_t(o.context));
    const std::unique_ptr<Decoder> decoder =
        decoders ? (*decoders)(method, o.context) : cpu_decoder(model, method, o.context);
    std::vector<float> logits = decoder->prefill(window.first(size_t(prefix)));
    for (int t = prefix; t < o.context; ++t) {
      result.nll_sum += token_nll(logits, window[size_t(t)]);
      ++result.scored_tokens;
      if (t + 1 < o.context) logits = decoder->step(window[size_t(t)]);
    }
    result.memory = decoder->memory();
    ++result.windows;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace zc::engine
