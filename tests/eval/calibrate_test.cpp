// Budget matching against measure functions whose exact solution is known here.
#include "eval/calibrate.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using namespace zc::eval;

TEST(Calibrate, SpecsWithTheKnob) {
  EXPECT_EQ(spec_with_knob("h2o", zc::kv::parse_method("h2o"), 0.25), "h2o:budget=0.25");
  EXPECT_EQ(spec_with_knob("mikv:hi=8", zc::kv::parse_method("mikv:hi=8"), 0.125), "mikv:hi=8,ratio=0.125");
  EXPECT_THROW(knob_option(zc::kv::parse_method("kivi2")), zc::Error);
  EXPECT_FALSE(has_budget_knob(zc::kv::parse_method("zipcache")));
}

TEST(Calibrate, LinearBitsConvergeToTheExactKnob) {
  // H2O-like: bits per value = 0.3 + 16 * budget, so ratio r needs budget (16/r - 0.3)/16.
  for (double target : {1.5, 3.0, 4.91, 10.0, 30.0}) {
    const auto m = zc::kv::parse_method("h2o");
    int calls = 0;
    const Calibration c = match_budget("h2o", m, target, [&](const zc::kv::MethodConfig& cfg) {
      ++calls;
      EXPECT_EQ(cfg.method, zc::kv::Method::H2O);
      return 16.0 / (0.3 + 16.0 * cfg.budget);
    });
    const double exact = (16.0 / target - 0.3) / 16.0;
    EXPECT_NEAR(c.knob, exact, 1e-4 * exact + 1e-6) << target;  // printed with 6 significant digits
    EXPECT_TRUE(c.reached);
    EXPECT_NEAR(c.achieved_ratio, target, 2e-3 * target);
    EXPECT_EQ(c.runs, calls);
    EXPECT_LE(c.runs, 4) << "linear: the two ends and one secant step";
    EXPECT_EQ(zc::kv::parse_method(c.resolved).budget, c.knob);
  }
}

TEST(Calibrate, CurvedAndSteppedBitsStillMatch) {
  // MiKV-like: 3 bits at ratio 0 to 5 bits at ratio 1, bent, and quantized to steps of
  // 1/1000 of the knob (whole tokens).
  const auto m = zc::kv::parse_method("mikv");
  const auto bits = [](double k) { return 3.0 + 2.0 * std::pow(std::floor(k * 1000) / 1000, 0.7); };
  for (double target : {3.3, 4.0, 4.5, 5.2}) {
    const Calibration c = match_budget("mikv", m, target, [&](const zc::kv::MethodConfig& cfg) {
      return 16.0 / bits(cfg.saliency_ratio);
    });
    EXPECT_TRUE(c.reached) << target << " got " << c.achieved_ratio;
    EXPECT_NEAR(c.achieved_ratio, target, 0.01 * target);
    EXPECT_LE(c.runs, 12);
  }
}

TEST(Calibrate, UnreachableTargetsGiveTheNearestEnd) {
  const auto m = zc::kv::parse_method("mikv");
  const auto measure = [](const zc::kv::MethodConfig& cfg) { return 16.0 / (3.0 + 2.0 * cfg.saliency_ratio); };
  Calibration c = match_budget("mikv", m, 8.0, measure);  // needs 2 bits: below 3
  EXPECT_FALSE(c.reached);
  EXPECT_EQ(c.knob, 0.0);
  EXPECT_NEAR(c.achieved_ratio, 16.0 / 3.0, 1e-12);
  c = match_budget("mikv", m, 1.0, measure);  // needs 16 bits: above 5
  EXPECT_FALSE(c.reached);
  EXPECT_EQ(c.knob, 1.0);
  EXPECT_THROW(match_budget("mikv", m, 0.0, measure), zc::Error);
}

}  // namespace
