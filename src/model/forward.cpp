#include "model/forward.h"

#include <algorithm>
#include <exception>
#include <set>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "model/ops.h"
#include "model/rope.h"

namespace zc::model {

kv::MemoryReport SequenceState::memory() const {
  kv::MemoryReport total;
  for (const auto& c : caches) total += c->memory();
  return total;
}

Model Model::load(const std::string& dir) {
  ModelConfig config = load_config(dir);
  const io::WeightStore store(dir);
  ModelWeights weights = load_weights(store, config, dir);
  return Model(std::move(config), std::move(weights));
}

Model::Model(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)), inv_freq_(rope_inv_freq(config_)) {
  ZC_CHECK(static_cast<int>(weights_.layers.size()) == config_.n_layers);
}

SequenceState Model::new_sequence(const kv::MethodConfig& method, int context_limit) const {
  if (context_limit < 0 || context_limit > config_.max_position_embeddings) {
    fail(
        "context limit {} must be in [1, {}] (max_position_embeddings of the model; 0 for the "
        "maximum)",
        context_limit, config_.max_position_embeddings);
  }
  SequenceState s;
  s.context_limit = context_limit == 0 ? config_.max_position_embeddings : context_limit;
  kv::KvShape shape;
  shape.n_heads = config_.n_heads;
  shape.n_kv_heads = config_.n_kv_heads;
  shape.head_dim = config_.head_dim;
  shape.scale = 0.0f;  // 1/sqrt(head_dim), as in every supported family
  shape.sliding_window = config_.sliding_window;
  s.caches.reserve(config_.n_layers);
  for (int l = 0; l < config_.n_layers; ++l) s.caches.push_back(kv::make_cache(method, shape));
  return s;
}

std::vector<float> Model::forward(SequenceState& seq, std::span<const int32_t> tokens,
                                  bool all_logits) const {
  const ForwardRequest r{&seq, tokens, all_logits};
  return std::move(forward(std::span<const ForwardRequest>(&r, 1))[0]);
}

std::vector<std::vector<float>> Model::forward(std::span<const ForwardRequest> batch) const {
  const ModelConfig& c = config_;
  if (batch.empty()) fail("forward: empty batch");

  // Check everything before touching any cache, so an error leaves every sequence as it was.
  std::set<const SequenceState*> seen;
  size_t n_rows = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const ForwardRequest& r = batch[b];
    if (!r.seq) fail("forward: request {} has no sequence", b);
    if (!seen.insert(r.seq).second) fail("forward: request {} repeats a sequence of the batch", b);
    if (static_cast<int>(r.seq->caches.size()) != c.n_layers) {
      fail("forward: request {}: the sequence has {} layer caches, the model {} layers", b,
           r.seq->caches.size(), c.n_layers);
    }
    if (r.tokens.empty()) fail("forward: request {} has no tokens", b);
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      if (r.tokens[i] < 0 || r.tokens[i] >= c.vocab_size) {
        fail("forward: request {}: token id {} at index {} is outside the vocabulary [0, {})", b,
             r.tokens[i], i, c.vocab_size);
      }
    }
    const size_t end = static_cast<size_t>(r.seq->position) + r.tokens.size();
    if (end > static_cast<size_t>(r.seq->context_limit)) {
      fail(
          "forward: request {}: {} tokens after {} already processed exceed the context limit of "
          "{} "
          "tokens (max_position_embeddings {})",
          b, r.tokens.size(), r.seq->position, r.seq->context_limit, c.max_position_embeddings);
    }
    n_rows += r.tokens.size();
  }

  const int H = c.hidden_size, d = c.head_dim, half = d / 2;
  const int q_dim = c.n_heads * d, kv_dim = c.n_kv_heads * d, inter = c.intermediate_size;
  const int N = static_cast<int>(n_rows);
  const float eps = static_cast<float>(c.rms_norm_eps);
  const auto sz = [](int a, int b2) { return static_cast<size_t>(a) * static_cast<size_t>(b2); };

  // Row offsets of each request, the embeddings and the RoPE tables of every row.
  std::vector<int> offset(batch.size() + 1, 0);
  for (size_t b = 0; b < batch.size(); ++b) {
    offset[b + 1] = offset[b] + static_cast<int>(batch[b].tokens.size());
  }
  std::vector<float> x(sz(N, H)), h(sz(N, H)), tmp(sz(N, H));
  std::vector<float> cos(sz(N, half)), sin(sz(N, half));
  for (size_t b = 0; b < batch.size(); ++b) {
    const ForwardRequest& r = batch[b];
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      const int row = offset[b] + static_cast<int>(i);
      std::copy_n(weights_.embed.data() + sz(r.tokens[i], H), H, x.data() + sz(row, H));
      rope_cos_sin(inv_freq_, r.seq->position + static_cast<int>(i), cos.data() + sz(row, half),
                   sin.data() + sz(row, half));
    }
  }

  std::vector<float> q(sz(N, q_dim)), k(sz(N, kv_dim)), v(sz(N, kv_dim)), attn(sz(N, q_dim));
  std::vector<float> gate(sz(N, inter)), up(sz(N, inter));
  auto bias = [](const std::vector<float>& b2) { return b2.empty() ? nullptr : b2.data(); };

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // Attention block.
    rmsnorm(x.data(), N, H, w.input_norm.data(), eps, h.data());
    linear(h.data(), N, H, w.wq.data(), q_dim, bias(w.bq), q.data());
    linear(h.data(), N, H, w.wk.data(), kv_dim, bias(w.bk), k.data());
    linear(h.data(), N, H, w.wv.data(), kv_dim, bias(w.bv), v.data());
    if (c.qk_norm) {  // Qwen3: RMSNorm over each head's vector, before RoPE
      rmsnorm(q.data(), sz(N, c.n_heads), d, w.q_norm.data(), eps, q.data());
      rmsnorm(k.data(), sz(N, c.n_kv_heads), d, w.k_norm.data(), eps, k.data());
    }
    for (int row = 0; row < N; ++row) {
      const float* cs = cos.data() + sz(row, half);
      const float* sn = sin.data() + sz(row, half);
      rope_apply(q.data() + sz(row, q_dim), c.n_heads, d, cs, sn);
      rope_apply(k.data() + sz(row, kv_dim), c.n_kv_heads, d, cs, sn);
    }
    // Each sequence attends over its own cache; sequences run in parallel. The
    // cache of one layer is only touched by its sequence's task.
    std::vector<std::exception_ptr> errors(batch.size());
    parallel_for(batch.size(), [&](size_t b) {
      try {
        const ForwardRequest& r = batch[b];
        const int T = static_cast<int>(r.tokens.size());
        const size_t row = static_cast<size_t>(offset[b]);
        kv::Cache& cache = *r.seq->caches[l];
        const float* qp = q.data() + row * q_dim;
        const float* kp = k.data() + row * kv_dim;
        const float* vp = v.data() + row * kv_dim;
        float* op = attn.data() + row * q_dim;
        if (T == 1 && r.seq->position > 0) {
          cache.append(qp, kp, vp, op);
        } else {
          cache.prefill(qp, kp, vp, T, op);
        }
      } catch (...) {
        errors[b] = std::current_exception();
      }
    });
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
    linear(attn.data(), N, q_dim, w.wo.data(), H, bias(w.bo), tmp.data());
    add_inplace(x.data(), tmp.data(), sz(N, H));

    // MLP block (SwiGLU).
    rmsnorm(x.data(), N, H, w.post_norm.data(), eps, h.data());
    linear(h.data(), N, H, w.w_gate.data(), inter, bias(w.b_gate), gate.data());
    linear(h.data(), N, H, w.w_up.data(), inter, bias(w.b_up), up.data());
    silu_mul(gate.data(), up.data(), sz(N, inter));
    linear(gate.data(), N, inter, w.w_down.data(), H, bias(w.b_down), tmp.data());
    add_inplace(x.data(), tmp.data(), sz(N, H));
  }

  for (const ForwardRequest& r : batch) r.seq->position += static_cast<int>(r.tokens.size());

  // Final norm and output projection only for the rows whose logits were asked for.
  std::vector<int> rows;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int first = batch[b].all_logits ? offset[b] : offset[b + 1] - 1;
    for (int row = first; row < offset[b + 1]; ++row) rows.push_back(row);
  }
  const int M = static_cast<int>(rows.size());
  std::vector<float> sel(sz(M, H));
  for (int i = 0; i < M; ++i) std::copy_n(x.data() + sz(rows[i], H), H, sel.data() + sz(i, H));
  rmsnorm(sel.data(), M, H, weights_.norm.data(), eps, sel.data());
  std::vector<float> logits(sz(M, c.vocab_size));
  linear(sel.data(), M, H, weights_.output_matrix(), c.vocab_size, nullptr, logits.data());

  std::vector<std::vector<float>> out(batch.size());
  size_t at = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const size_t n = batch[b].all_logits ? batch[b].tokens.size() : 1;
    const auto begin = logits.begin() + static_cast<ptrdiff_t>(at * c.vocab_size);
    out[b].assign(begin, begin + static_cast<ptrdiff_t>(n * c.vocab_size));
    at += n;
  }
  return out;
}

}  // namespace zc::model
