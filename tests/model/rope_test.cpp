// RoPE against double-precision references written here: inv_freq of the default,
// linear and llama3 schedules (HF _compute_*_rope_parameters) and the rotate_half
// rotation (pairs i, i + d/2) at many positions, head counts and head sizes.
#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/rng.h"

namespace zc::model {
namespace {

ModelConfig config(int head_dim, double theta) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  return c;
}

double default_freq(int i, int d, double theta) { return 1.0 / std::pow(theta, 2.0 * i / d); }

TEST(Rope, DefaultAndLinear) {
  for (int d : {2, 6, 64, 128}) {
    for (double theta : {10000.0, 500000.0, 1e6}) {
      ModelConfig c = config(d, theta);
      std::vector<float> f = rope_inv_freq(c);
      ASSERT_EQ(f.size(), static_cast<size_t>(d / 2));
      for (int i = 0; i < d / 2; ++i)
        EXPECT_NEAR(f[i] / default_freq(i, d, theta), 1.0, 1e-6) << d << " " << i;
      c.rope.type = RopeType::Linear;
      c.rope.factor = 4.0;
      f = rope_inv_freq(c);
      for (int i = 0; i < d / 2; ++i)
        EXPECT_NEAR(f[i] * 4.0 / default_freq(i, d, theta), 1.0, 1e-6);
    }
  }
}

// Llama 3.1's schedule (Meta's reference apply_scaling): wavelengths shorter than
// old_len / high keep their frequency, longer than old_len / low are divided by
// factor, and the band between interpolates linearly in old_len / wavelength.
TEST(Rope, Llama3Schedule) {
  const double factor = 8, low = 1, high = 4, old_len = 8192;
  for (int d : {64, 128}) {
    ModelConfig c = config(d, 500000.0);
    c.rope = {RopeType::Llama3, factor, low, high, 8192};
    const std::vector<float> f = rope_inv_freq(c);
    int kept = 0, divided = 0, smoothed = 0;
    for (int i = 0; i < d / 2; ++i) {
      const double base = default_freq(i, d, 500000.0);
      const double wavelen = 2 * std::numbers::pi / base;
      double want;
      if (wavelen < old_len / high) {
        want = base;
        ++kept;
      } else if (wavelen > old_len / low) {
        want = base / factor;
        ++divided;
      } else {
        const double s = (old_len / wavelen - low) / (high - low);
        want = (1 - s) * base / factor + s * base;
        ++smoothed;
      }
      EXPECT_NEAR(f[i] / want, 1.0, 2e-6) << "d " << d << " i " << i;
    }
    EXPECT_GT(kept, 0);
    EXPECT_GT(divided, 0);
    EXPECT_GT(smoothed, 0);
  }
}

TEST(Rope, RotateHalf) {
  Rng rng(7);
  for (int d : {2, 6, 64, 128}) {
    for (int heads : {1, 3}) {
      for (int pos : {0, 1, 7, 300, 4095}) {
        const std::vector<float> inv = rope_inv_freq(config(d, 10000.0));
        std::vector<float> x(static_cast<size_t>(heads) * d);
        for (float& v : x) v = rng.normal();
        std::vector<float> cs(d / 2), sn(d / 2), y = x;
        rope_cos_sin(inv, pos, cs.data(), sn.data());
        rope_apply(y.data(), heads, d, cs.data(), sn.data());
        const int h2 = d / 2;
        for (int h = 0; h < heads; ++h) {
          for (int i = 0; i < h2; ++i) {
            // HF forms the angle in fp32 (inv_freq @ position_ids); the rest in double.
            const double a = static_cast<double>(static_cast<float>(pos) * inv[i]);
            const double x1 = x[h * d + i], x2 = x[h * d + i + h2];
            EXPECT_NEAR(y[h * d + i], x1 * std::cos(a) - x2 * std::sin(a), 1e-5);
            EXPECT_NEAR(y[h * d + i + h2], x2 * std::cos(a) + x1 * std::sin(a), 1e-5);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace zc::model
