#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"
#include "core/thread_pool.h"

namespace zc::engine {

void SamplingParams::validate() const {
  if (!std::isfinite(temperature)) fail("--temp must be a finite number, got {}", temperature);
  if (!(top_p > 0.0f)) fail("--top-p must be in (0, 1], got {}", top_p);
  if (min_p < 0.0f || min_p > 1.0f) fail("--min-p must be in [0, 1], got {}", min_p);
  if (!(repeat_penalty > 0.0f)) fail("--repeat-penalty must be > 0, got {}", repeat_penalty);
  if (repeat_last_n < -1) fail("--repeat-last-n must be -1 (all) or >= 0, got {}", repeat_last_n);
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    fail("--frequency-penalty must be in [-2, 2], got {}", frequency_penalty);
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    fail("--presence-penalty must be in [-2, 2], got {}", presence_penalty);
}

namespace {

// Whether any logit is NaN. A plain reduction (vectorized), so that the common case, no
// NaN, costs little next to the compares that follow.
bool has_nan(std::span<const float> logits) {
  bool any = false;
  for (const float v : logits) any |= v != v;
  return any;
}

// Fails naming the first NaN.
void reject_nan(std::span<const float> logits) {
  if (!has_nan(logits)) return;
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isnan(logits[i])) fail("sampler: logit {} is NaN (the model produced NaN)", i);
}

// The first largest of logits without NaN.
int32_t first_largest(std::span<const float> logits) {
  // The best value in a register: re-reading logits[best] each time was 2.8x slower.
  int32_t best = 0;
  float top = logits[0];
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > top) top = logits[i], best = int32_t(i);
  return best;
}
}  // namespace

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("sampler: empty logits");
  reject_nan(logits);
  return first_largest(logits);
}

int32_t argmax_or_nan(std::span<const float> logits) {
  if (logits.empty()) fail("sampler: empty logits");
  return has_nan(logits) ? -1 : first_largest(logits);
}

int32_t check_picked(int32_t id, size_t vocab) {
  if (id == -1) fail("sampler: the logits hold a NaN (the model produced NaN)");
  if (id == -2) fail("sampler: the largest logit is not finite (the model overflowed or masked every token)");
  if (id < 0 || size_t(id) >= vocab) fail("sampler: a picked token {} outside a vocabulary of {}", id, vocab);
  return id;
}

TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int top) {
  const size_t n = logits.size();
  if (id < 0 || size_t(id) >= n) fail("logprobs: token {} outside {} logits", id, n);
  if (top < 0 || top > kMaxTopLogprobs) fail("logprobs: {} alternatives; 0 to {}", top, kMaxTopLogprobs);
  reject_nan(logits);
  // log p_i = l_i - (max + log sum_j exp(l_j - max)), in double.
  double mx = -INFINITY;
  for (const float v : logits) mx = std::max(mx, double(v));
  if (!std::isfinite(mx)) fail("logprobs: the largest logit is {}", mx);
  double sum = 0;
  for (const float v : logits) sum += std::exp(double(v) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob out;
  out.id = id;
  out.logprob = double(logits[size_t(id)]) - lse;
  // The best `top` ids, kept sorted while the logits pass by in id order: a later id
  // enters only ahead of strictly smaller logits, so ties keep the lower id first. (A
  // vocabulary-sized index array per token cost a 0.5 MB allocation for Llama 3.)
  const size_t k = std::min(size_t(top), n);
  std::vector<int32_t> best;
  best.reserve(k + 1);
  for (size_t i = 0; i < n && k > 0; ++i) {
    const float v = logits[i];
    if (best.size() == k && !(v > logits[size_t(best.back())])) continue;
    auto at = best.end();
    while (at != best.begin() && v > logits[size_t(*(at - 1))]) --at;
    best.insert(at, int32_t(i));
    if (best.size() > k) best.pop_back();
  }
  for (const int32_t t : best) out.top.emplace_back(t, double(logits[size_t(t)]) - lse);
  return out;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

namespace {

using Candidate = detail::SamplerCandidate;

// Rank order: the larger logit first, the lower id on ties (as a stable sort by logit).
bool before(const Candidate& a, const Candidate& b) { return a.x > b.x || (a.x == b.x && a.id < b.id); }

// The length of the shortest prefix, in rank order, of c[0, n) whose softmax terms
// reach `target` (in units of the softmax's sum); n when none does. A weighted
// quickselect: each round places the middle rank (nth_element) and keeps the half the
// cut lies in, so the candidates are never sorted but for the last few (O(n) expected).
size_t nucleus(std::vector<Candidate>& c, size_t n, double target) {
  const auto at = [&c](size_t i) { return c.begin() + long(i); };
  size_t lo = 0, hi = n;  // the cut lies in (lo, hi]; acc: the terms of c[0, lo)
  double acc = 0;
  while (hi - lo > 32) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(at(lo), at(mid), at(hi), before);
    double m = 0;
    for (size_t i = lo; i <= mid; ++i) m += c[i].e;
    if (acc + m >= target) {
      hi = mid + 1;
    } else {
      acc += m;
      lo = mid + 1;
    }
  }
  std::sort(at(lo), at(hi), before);
  for (size_t i = lo; i < hi; ++i) {
    acc += c[i].e;
    if (acc >= target) return i + 1;
  }
  return n;
}

// The vocabulary's passes run over the thread pool in chunks of this many tokens (a
// pass of exp over 128256 tokens is 1-2 ms of one core). The chunks are fixed, and
// their partial results combine in chunk order, so a seed draws the same token
// whatever the number of threads.
constexpr size_t kChunk = 16384;
size_t chunk_count(size_t n) { return (n + kChunk - 1) / kChunk; }

// e[i] = exp(x[i] - mx); sums[c] = the sum of chunk c's terms; returns their sum.
double softmax_terms(const std::vector<double>& x, double mx, std::vector<double>& e, std::vector<double>& sums) {
  const size_t n = x.size();
  e.resize(n);
  sums.assign(chunk_count(n), 0.0);
  parallel_for(sums.size(), [&](size_t c) {
    double s = 0;
    for (size_t i = c * kChunk, end = std::min(n, i + kChunk); i < end; ++i) s += e[i] = std::exp(x[i] - mx);
    sums[c] = s;
  });
  double sum = 0;
  for (const double s : sums) sum += s;
  return sum;
}

// The k best of x in rank order's set (not sorted), as candidates with e unset: each
// chunk's k best, then the k best of those (the k best overall are among them). A
// chunk keeps its best in a heap whose top is the worst of them, so most tokens cost one
// compare (a candidate array of the whole chunk and its nth_element cost 4x more).
void top_k(const std::vector<double>& x, size_t k, std::vector<std::vector<Candidate>>& chunk_best,
           std::vector<Candidate>& out) {
  const size_t n = x.size(), chunks = chunk_count(n);
  chunk_best.resize(chunks);
  parallel_for(chunks, [&](size_t c) {
    std::vector<Candidate>& b = chunk_best[c];
    b.clear();
    for (size_t i = c * kChunk, end = std::min(n, i + kChunk); i < end; ++i) {
      const Candidate t{x[i], 0.0, int32_t(i)};
      if (b.size() < k) {
        b.push_back(t);
        std::push_heap(b.begin(), b.end(), before);  // under `before`, the top ranks last
      } else if (before(t, b.front())) {  // ids ascend: a tie never displaces an earlier id
        std::pop_heap(b.begin(), b.end(), before);
        b.back() = t;
        std::push_heap(b.begin(), b.end(), before);
      }
    }
  });
  out.clear();
  for (const auto& b : chunk_best) out.insert(out.end(), b.begin(), b.end());
  std::nth_element(out.begin(), out.begin() + long(k) - 1, out.end(), before);
  out.resize(k);
}

// top-p over the whole vocabulary (no top-k before it): the shortest ranked prefix
// whose terms reach `target`, as candidates in id order. The terms are binned by their
// distance below the best logit, kTopPBins bins of 1/64 over [mx - 64, mx] and one for
// the rest (a pass over the thread pool); every token of the bins before the one where
// the mass reaches target is kept, and only that bin's tokens are ranked (nucleus).
// Equal logits share a bin, so ties still rank by id.
constexpr int kTopPBins = 64 * 64;
void top_p_all(const std::vector<double>& x, const std::vector<double>& e, double mx, double target,
               detail::SamplerTopPWork& w, std::vector<Candidate>& out) {
  const size_t n = x.size(), chunks = chunk_count(n), bins = kTopPBins + 1;
  w.bin.resize(n);
  w.chunk_mass.assign(chunks * bins, 0.0);
  parallel_for(chunks, [&](size_t c) {
    double* mass = w.chunk_mass.data() + c * bins;
    for (size_t i = c * kChunk, end = std::min(n, i + kChunk); i < end; ++i) {
      const double below = mx - x[i];  // >= 0; +inf for -inf logits
      const int b = below < 64.0 ? int(below * 64.0) : kTopPBins;
      w.bin[i] = uint16_t(b);
      mass[b] += e[i];
    }
  });
  size_t cut = bins - 1;
  double acc = 0;  // the terms of the bins before the cut
  for (size_t b = 0; b < bins; ++b) {
    double m = 0;
    for (size_t c = 0; c < chunks; ++c) m += w.chunk_mass[c * bins + b];
    if (acc + m >= target || b + 1 == bins) {
      cut = b;
      break;
    }
    acc += m;
  }
  w.edge.clear();
  for (size_t i = 0; i < n; ++i)
    if (w.bin[i] == cut) w.edge.push_back(Candidate{x[i], e[i], int32_t(i)});
  const size_t k = nucleus(w.edge, w.edge.size(), target - acc);
  w.edge.resize(k);
  std::sort(w.edge.begin(), w.edge.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  out.clear();
  size_t next = 0;  // the next kept edge token, by id
  for (size_t i = 0; i < n; ++i) {
    if (w.bin[i] < cut) {
      out.push_back(Candidate{x[i], e[i], int32_t(i)});
    } else if (next < w.edge.size() && w.edge[next].id == int32_t(i)) {
      out.push_back(w.edge[next++]);
    }
  }
}

}  // namespace

// The filters in HF's order: repetition penalty, temperature, top-k, top-p, min-p.
// Nothing is sorted: top-k selects its k (nth_element), top-p finds its cut by a
// weighted quickselect (nucleus) among the tokens within `delta` of the best logit,
// widening delta until their mass reaches top_p (every token outside ranks below
// every token inside), and min-p is a threshold on what is left. Ranks break ties by
// the lower id, as a stable sort by logit did.
const Sampler::Kept& Sampler::filter(std::span<const float> logits, std::span<const int32_t> history) const {
  const size_t n = logits.size();
  if (n == 0) fail("sampler: empty logits");
  reject_nan(logits);
  std::vector<double>& x = x_;
  x.assign(logits.begin(), logits.end());

  // Repetition penalty over the distinct tokens of the recent history.
  if (params_.repeat_penalty != 1.0f) {
    const size_t from = params_.repeat_last_n < 0 || size_t(params_.repeat_last_n) >= history.size()
                            ? 0
                            : history.size() - size_t(params_.repeat_last_n);
    std::unordered_set<int32_t> seen(history.begin() + long(from), history.end());
    for (int32_t t : seen) {
      if (t < 0 || size_t(t) >= n) continue;
      x[size_t(t)] = x[size_t(t)] > 0 ? x[size_t(t)] / params_.repeat_penalty : x[size_t(t)] * params_.repeat_penalty;
    }
  }
  // Frequency and presence penalties over the tokens drawn so far.
  for (const auto& [t, count] : drawn_) {
    if (t < 0 || size_t(t) >= n) continue;
    x[size_t(t)] -= double(count) * params_.frequency_penalty + params_.presence_penalty;
  }
  Kept& kept = kept_;
  kept.ids.clear();
  kept.p.clear();
  kept.dense = false;
  if (params_.temperature <= 0.0f) {
    size_t best = 0;
    double top = x[0];
    for (size_t i = 1; i < n; ++i)
      if (x[i] > top) top = x[i], best = i;
    kept.ids.push_back(int32_t(best));
    kept.p.push_back(1.0);
    return kept;
  }
  const double temperature = params_.temperature;
  double mx = -INFINITY;
  for (double& v : x) v /= temperature, mx = std::max(mx, v);
  if (!std::isfinite(mx)) fail("sampler: the largest logit is {} (the model overflowed or masked every token)", mx);

  // The softmax's terms: over the top-k when it cuts, else over every token.
  std::vector<Candidate>& candidates = rank_;
  std::vector<double>& e = e_;
  double sum = 0;
  bool ranked = false;  // the candidates are candidates[0, keep), else every token (e)
  bool by_id = false;   // the candidates are in id order already
  size_t keep = n;
  if (params_.top_k > 0 && size_t(params_.top_k) < n) {
    keep = size_t(params_.top_k);
    top_k(x, keep, chunk_best_, candidates);
    ranked = true;
    for (Candidate& c : candidates) sum += c.e = std::exp(c.x - mx);
  } else {
    sum = softmax_terms(x, mx, e, chunk_sums_);
    if (params_.top_p >= 1.0f && params_.min_p <= 0.0f) {
      kept.dense = true;  // nothing to cut: draw() walks e
      kept.mass = sum;
      return kept;
    }
  }

  // top-p: the shortest ranked prefix whose mass reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    if (ranked) {
      keep = nucleus(candidates, keep, params_.top_p * sum);
    } else {
      top_p_all(x, e, mx, params_.top_p * sum, top_p_work_, candidates);
      keep = candidates.size();
      ranked = by_id = true;
    }
  }
  // min-p: tokens at least min_p times as likely as the best (whose term is exp(0)),
  // a threshold on the ranked prefix since probabilities fall with the rank.
  const double min_term = params_.min_p;  // of the best's term, exp(0) = 1
  const auto passes = [&](double term) { return params_.min_p <= 0.0f || term >= min_term; };
  double mass = 0;
  if (ranked) {
    candidates.resize(keep);
    if (!by_id)
      std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
    for (const Candidate& c : candidates) {
      if (passes(c.e)) kept.ids.push_back(c.id), kept.p.push_back(c.e), mass += c.e;
    }
  } else {
    kept.ids.reserve(n);
    kept.p.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (passes(e[i])) kept.ids.push_back(int32_t(i)), kept.p.push_back(e[i]), mass += e[i];
    }
  }
  for (double& v : kept.p) v /= mass;
  return kept;
}

std::vector<double> Sampler::distribution(std::span<const float> logits, std::span<const int32_t> history) const {
  const Kept& kept = filter(logits, history);
  std::vector<double> p(logits.size(), 0.0);
  if (kept.dense) {
    for (size_t i = 0; i < p.size(); ++i) p[i] = e_[i] / kept.mass;
    return p;
  }
  for (size_t i = 0; i < kept.ids.size(); ++i) p[size_t(kept.ids[i])] = kept.p[i];
  return p;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (plain_argmax()) return argmax(logits);
  const Kept& kept = filter(logits, history);
  const int32_t token = draw(kept, rng_.uniform());
  if (additive_penalties()) ++drawn_[token];
  return token;
}

DrawSpec Sampler::next_draw() {
  if (!drawable()) fail("sampler: a draw was asked of a sampler that is greedy or has a penalty");
  return DrawSpec{params_.temperature, params_.top_k, params_.top_p, params_.min_p, rng_.uniform()};
}

int32_t pick_on_host(std::span<const float> logits, const TokenPick& pick) {
  if (pick.kind == TokenPick::Kind::kArgmax) return argmax_or_nan(logits);
  if (pick.kind != TokenPick::Kind::kDraw) fail("pick_on_host: the pick asks for the row of logits");
  if (logits.empty()) fail("sampler: empty logits");
  if (has_nan(logits)) return -1;
  if (!std::isfinite(logits[size_t(first_largest(logits))])) return -2;
  const DrawSpec& d = pick.draw;
  SamplingParams params;
  params.temperature = d.temperature;
  params.top_k = d.top_k;
  params.top_p = d.top_p;
  params.min_p = d.min_p;
  const Sampler sampler(params);
  if (!sampler.drawable()) fail("pick_on_host: a draw at temperature {}", d.temperature);
  if (!(d.u >= 0.0 && d.u < 1.0)) fail("pick_on_host: the uniform {} is not in [0, 1)", d.u);
  return sampler.draw(sampler.filter(logits, {}), d.u);
}

int32_t Sampler::draw(const Kept& kept, double u) const {
  // The walk over the kept tokens in id order, as over the whole distribution.
  if (kept.dense) {
    // In units of the terms, whole chunks skipped by their sums: from the chunk where
    // u falls, token by token.
    double left = u * kept.mass;
    size_t from = 0;
    for (size_t c = 0; c + 1 < chunk_sums_.size() && left >= chunk_sums_[c]; ++c) left -= chunk_sums_[c], from += kChunk;
    int32_t last = -1;
    for (size_t i = from; i < e_.size(); ++i) {
      if (e_[i] <= 0) continue;
      last = int32_t(i);
      if (left < e_[i]) return last;
      left -= e_[i];
    }
    // Rounding left a sliver: the last token with mass takes it (the best has e = 1).
    if (last >= 0) return last;
    for (size_t i = e_.size(); i-- > 0;)
      if (e_[i] > 0) return int32_t(i);
    fail("sampler: no token has mass");  // not reached: the best token's term is 1
  }
  int32_t last = kept.ids.front();
  for (size_t i = 0; i < kept.ids.size(); ++i) {
    if (kept.p[i] <= 0) continue;
    last = kept.ids[i];
    if (u < kept.p[i]) return last;
    u -= kept.p[i];
  }
  return last;  // rounding left a sliver of mass: the last candidate takes it
}

}  // namespace zc::engine
