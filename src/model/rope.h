// Rotary position embedding as HF transformers computes it for Llama, Mistral and
// Qwen: inv_freq from rope_theta (and the llama3 or linear scaling of the config),
// angle = float(position) * inv_freq in fp32, and the rotate_half convention that
// pairs channel i with channel i + d/2 (not adjacent pairs as in the RoPE paper).
#pragma once
#include <vector>

#include "model/config.h"

namespace zc::model {

// inv_freq[i], i in [0, head_dim/2), in fp32 with HF's order of operations:
// 1 / theta^(2i/d) (_compute_default_rope_parameters), divided by factor for
// "linear", and _compute_llama3_parameters for "llama3".
std::vector<float> rope_inv_freq(const ModelConfig& config);

// The cos/sin of every frequency at one position (half = head_dim / 2 each).
void rope_cos_sin(const std::vector<float>& inv_freq, int position, float* cos_out, float* sin_out);

// Rotates n_heads consecutive vectors of head_dim values in place:
// x[i] <- x[i] cos_i - x[i+h] sin_i, x[i+h] <- x[i+h] cos_i + x[i] sin_i (h = head_dim/2).
void rope_apply(float* x, int n_heads, int head_dim, const float* cos, const float* sin);

}  // namespace zc::model
