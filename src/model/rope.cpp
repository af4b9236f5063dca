#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace zc::model {

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const int dim = config.head_dim;
  const int half = dim / 2;
  const float base = static_cast<float>(config.rope_theta);
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all fp32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(base, exponent);
  }
  const RopeScaling& s = config.rope;
  if (s.type == RopeType::Linear) {
    for (float& f : inv) f /= static_cast<float>(s.factor);
  } else if (s.type == RopeType::Llama3) {
    // _compute_llama3_parameters: keep high frequencies, divide low ones by factor,
    // interpolate smoothly in between (wavelengths measured against the original context).
    const float factor = static_cast<float>(s.factor);
    const float low = static_cast<float>(s.low_freq_factor);
    const float high = static_cast<float>(s.high_freq_factor);
    const float old_len = static_cast<float>(s.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
    for (float& f : inv) {
      const float wavelen = two_pi / f;
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

void rope_cos_sin(const std::vector<float>& inv_freq, int position, float* cos_out,
                  float* sin_out) {
  const float p = static_cast<float>(position);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    // The fp32 angle as HF forms it (inv_freq @ position_ids in fp32); its cos/sin
    // are taken in double and rounded once.
    const double angle = static_cast<double>(p * inv_freq[i]);
    cos_out[i] = static_cast<float>(std::cos(angle));
    sin_out[i] = static_cast<float>(std::sin(angle));
  }
}

void rope_apply(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace zc::model
