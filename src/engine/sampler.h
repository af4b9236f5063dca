// Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p and
// repetition penalty, with a seed, in the order HF transformers applies them
// (repetition penalty, temperature, top-k, top-p, min-p), so a seed and options
// mean the same thing as there; OpenAI's frequency and presence penalties come right
// after the repetition penalty (vLLM's order).
//
// Cost per token is O(vocab) plus a sort of the candidates a filter actually ranks
// (sampler.cpp): a full sort of Llama 3's 128256 logits per token took 17-25 ms on a
// small CPU, three times a GPU decode step of an 8B model.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
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
  // OpenAI's additive penalties over the tokens this sampler has drawn (the output, not
  // the prompt, as vLLM counts them): logit -= count * frequency + (count > 0) * presence.
  float frequency_penalty = 0.0f;  // [-2, 2]; 0: off
  float presence_penalty = 0.0f;   // [-2, 2]; 0: off
  uint64_t seed = 0;

  // Throws zc::Error naming the bad option.
  void validate() const;
};

// One token's draw as a device makes it where the logits are (cuda/model/sampling.h): the
// filters of a sampler with no penalty, and the uniform its walk over the kept tokens
// uses (the one Sampler::sample would take from its seeded generator).
struct DrawSpec {
  float temperature = 1.0f;  // > 0
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  double u = 0.0;  // [0, 1)
};

// What a decoder hands back for a row of a step (BatchDecoder::step_pick,
// Decoder::step_pick): the row of logits, or the token itself, picked where the logits
// are (the GPU: no row copied to the host): their argmax (greedy) or a draw.
struct TokenPick {
  enum class Kind : uint8_t { kLogits, kArgmax, kDraw };
  Kind kind = Kind::kLogits;
  DrawSpec draw;  // kDraw's
};

namespace detail {
// A token the filters rank (sampler.cpp): its logit after penalty and temperature and
// its softmax term, held by value so that selecting among them reads no other array.
struct SamplerCandidate {
  double x, e;
  int32_t id;
};
// Top-p's work buffers over a whole vocabulary (sampler.cpp, top_p_all).
struct SamplerTopPWork {
  std::vector<uint16_t> bin;        // per token: its bin below the best logit
  std::vector<double> chunk_mass;   // per chunk of the vocabulary and bin: the terms' sum
  std::vector<SamplerCandidate> edge;  // the tokens of the bin where the mass reaches top-p
};
}  // namespace detail

// One per generation: its work buffers make it unsafe to share between threads.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // history: the tokens so far (prompt and generated), for the repetition penalty. The
  // token drawn counts as output for the frequency and presence penalties.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // Whether sample() is the plain argmax of the logits (greedy, no penalty): then a
  // caller may take the argmax where the logits are (the GPU) instead of the row.
  bool plain_argmax() const { return params_.temperature <= 0.0f && no_penalty(); }
  // Whether sample() is a draw from its row and one uniform only (sampling, no penalty):
  // then a device may draw it where the logits are (next_draw).
  bool drawable() const { return params_.temperature > 0.0f && no_penalty(); }
  // The next token's draw for a device (only where drawable()): takes the uniform that
  // sample() would take, so that the seed's stream goes on as if sample() had run.
  DrawSpec next_draw();
  // The probabilities the next sample() draws from after every filter (zeros for
  // removed tokens); for greedy, one-hot. Exposed for tests.
  std::vector<double> distribution(std::span<const float> logits, std::span<const int32_t> history) const;

 private:
  // Token ids and probabilities the filters keep, ids ascending; the work buffers
  // stay allocated from token to token (a vocabulary of doubles is 1 MB).
  struct Kept {
    std::vector<int32_t> ids;
    std::vector<double> p;
    // No filter cut anything (the OpenAI API's default): every token is kept with its
    // softmax term e_[i] / mass, and ids / p stay empty (a vocabulary of each per token
    // was a third of the cost).
    bool dense = false;
    double mass = 0;
  };
  const Kept& filter(std::span<const float> logits, std::span<const int32_t> history) const;
  int32_t draw(const Kept& kept, double u) const;  // the walk over the kept tokens to u

  bool no_penalty() const { return params_.repeat_penalty == 1.0f && !additive_penalties(); }
  bool additive_penalties() const { return params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f; }

  SamplingParams params_;
  Rng rng_;
  std::unordered_map<int32_t, int> drawn_;  // output token -> times drawn (additive penalties)
  mutable Kept kept_;
  mutable std::vector<double> x_;      // the logits after penalty and temperature
  mutable std::vector<double> e_;      // exp(x - max)
  mutable std::vector<detail::SamplerCandidate> rank_;  // the tokens top-k and top-p rank (sampler.cpp)
  mutable std::vector<double> chunk_sums_;  // e_'s sums over fixed chunks of the vocabulary
  mutable std::vector<std::vector<detail::SamplerCandidate>> chunk_best_;  // top-k per chunk
  mutable detail::SamplerTopPWork top_p_work_;

  friend int32_t pick_on_host(std::span<const float> logits, const TokenPick& pick);
};

// Index of the largest logit (the first on ties); NaN logits are an error.
int32_t argmax(std::span<const float> logits);
// The same, with -1 for NaN logits instead of the error: the form a device's argmax
// (cuda argmax_rows) hands back, turned into that error by check_picked.
int32_t argmax_or_nan(std::span<const float> logits);
// A kArgmax or kDraw pick made on the host, in a device's form: argmax_or_nan, or the
// draw a Sampler with the DrawSpec's filters makes with its uniform (-1 for NaN logits,
// -2 when the largest is not finite). What a decoder without a device does.
int32_t pick_on_host(std::span<const float> logits, const TokenPick& pick);
// `id` (a pick: argmax_or_nan's or a device draw's) when it is a token of a `vocab`-sized
// row; the sampler's errors for -1 (NaN) and -2 (no finite largest logit), an error
// naming it otherwise.
int32_t check_picked(int32_t id, size_t vocab);

// A generated token's log probability under the model: the log-softmax of the raw
// logits, before penalties, temperature and filters (what vLLM reports by default and
// OpenAI's logprobs mean), and the `top` most likely tokens'.
struct TokenLogprob {
  int32_t id = 0;
  double logprob = 0;
  std::vector<std::pair<int32_t, double>> top;  // most likely first (the lower id on ties)
};
inline constexpr int kMaxTopLogprobs = 20;
// Throws zc::Error for NaN logits, an id outside them or top outside [0, kMaxTopLogprobs].
TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int top);

}  // namespace zc::engine
