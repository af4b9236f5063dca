// Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p and
// repetition penalty, with a seed, in the order HF transformers applies them
// (repetition penalty, temperature, top-k, top-p, min-p), so a seed and options
// mean the same thing as there.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.h"

namespace zc::engine {

struct SamplingParams {
  float temperature = 0.8f;      // <= 0: greedy
  int top_k = 40;                // <= 0: off
  float top_p = 0.95f;           // >= 1: off
  float min_p = 0.05f;           // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;   // 1: off; HF's rule: logit > 0 ? logit / r : logit * r
  int repeat_last_n = 64;        // tokens of history the penalty looks at (-1: all)
  uint64_t seed = 0;

  // Throws zc::Error naming the bad option.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // history: the tokens so far (prompt and generated), for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The probabilities the sampler draws from after every filter (zeros for removed
  // tokens); for greedy, one-hot. Exposed for tests.
  std::vector<double> distribution(std::span<const float> logits, std::span<const int32_t> history) const;

 private:
  SamplingParams params_;
  Rng rng_;
};

// Index of the largest logit (the first on ties); NaN logits are an error.
int32_t argmax(std::span<const float> logits);

}  // namespace zc::engine
