// parse_method: defaults per SPEC.md, every option, and clear errors for bad specs.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "kv/method.h"

namespace zc::kv {
namespace {

std::string error_of(const std::string& spec) {
  try {
    parse_method(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ParseMethod, DefaultsFollowTheSpec) {
  const auto f = parse_method("fp16");
  EXPECT_EQ(f.method, Method::Fp16);
  EXPECT_EQ(f.label, "fp16");
  EXPECT_EQ(parse_method("fp32").method, Method::Fp32);

  const auto k2 = parse_method("kivi2");
  EXPECT_EQ(k2.method, Method::Kivi);
  EXPECT_EQ(k2.kivi_bits, 2);
  EXPECT_EQ(k2.group, 32);
  EXPECT_EQ(k2.residual, 128);
  EXPECT_EQ(parse_method("kivi4").kivi_bits, 4);

  const auto z = parse_method("zipcache");
  EXPECT_EQ(z.method, Method::ZipCache);
  EXPECT_EQ(z.bits_high, 4);
  EXPECT_EQ(z.bits_low, 2);
  EXPECT_DOUBLE_EQ(z.saliency_ratio, 0.4);
  EXPECT_DOUBLE_EQ(z.probes.recent_ratio, 0.05);
  EXPECT_DOUBLE_EQ(z.probes.random_ratio, 0.05);
  EXPECT_FALSE(z.probe_all_rows);
  EXPECT_EQ(z.metric, saliency::Metric::Normalized);
  EXPECT_EQ(z.norm, saliency::Norm::ProbeCount);
  EXPECT_EQ(z.stream_gap, 100);
  EXPECT_EQ(z.value_scheme, quant::Scheme::Cstq);
  EXPECT_EQ(z.key_scheme, quant::Scheme::Channelwise);
  EXPECT_EQ(z.stats_block, 0);

  const auto m = parse_method("mikv");
  EXPECT_EQ(m.method, Method::MiKV);
  EXPECT_EQ(m.metric, saliency::Metric::Accumulated);
  EXPECT_TRUE(m.probe_all_rows);
  EXPECT_EQ(m.value_scheme, quant::Scheme::Groupwise);
  EXPECT_EQ(m.key_scheme, quant::Scheme::Groupwise);
  EXPECT_EQ(m.bits_high, 4);
  EXPECT_EQ(m.bits_low, 2);

  const auto h = parse_method("h2o");
  EXPECT_EQ(h.method, Method::H2O);
  EXPECT_DOUBLE_EQ(h.budget, 0.2);
}

TEST(ParseMethod, Options) {
  const auto z = parse_method(
      "zipcache:hi=8,lo=4,ratio=0.25,gap=7,seed=42,metric=accumulated,norm=full,"
      "values=groupwise,vgroup=16,block=64,keys=tokenwise,kgroup=8");
  EXPECT_EQ(z.label, "zipcache:hi=8,lo=4,ratio=0.25,gap=7,seed=42,metric=accumulated,norm=full,"
                     "values=groupwise,vgroup=16,block=64,keys=tokenwise,kgroup=8");
  EXPECT_EQ(z.bits_high, 8);
  EXPECT_EQ(z.bits_low, 4);
  EXPECT_DOUBLE_EQ(z.saliency_ratio, 0.25);
  EXPECT_EQ(z.stream_gap, 7);
  EXPECT_EQ(z.probes.seed, 42u);
  EXPECT_EQ(z.metric, saliency::Metric::Accumulated);
  EXPECT_EQ(z.norm, saliency::Norm::Full);
  EXPECT_EQ(z.value_scheme, quant::Scheme::Groupwise);
  EXPECT_EQ(z.value_group, 16);
  EXPECT_EQ(z.stats_block, 64);
  EXPECT_EQ(z.key_scheme, quant::Scheme::Tokenwise);
  EXPECT_EQ(z.key_group, 8);

  const auto uniform = parse_method("zipcache:bits=8");
  EXPECT_EQ(uniform.bits_high, 8);
  EXPECT_EQ(uniform.bits_low, 8);

  const auto k = parse_method("kivi2:group=16,residual=64,bits=4");
  EXPECT_EQ(k.group, 16);
  EXPECT_EQ(k.residual, 64);
  EXPECT_EQ(k.kivi_bits, 4);
  EXPECT_EQ(parse_method("kivi2:residual=0").residual, 0);

  EXPECT_DOUBLE_EQ(parse_method("h2o:budget=0.5").budget, 0.5);
  EXPECT_DOUBLE_EQ(parse_method("h2o:budget=1").budget, 1.0);
}

TEST(ParseMethod, ProbeOptions) {
  auto p = parse_method("zipcache:probe=0.2");
  EXPECT_DOUBLE_EQ(p.probes.recent_ratio, 0.1);
  EXPECT_DOUBLE_EQ(p.probes.random_ratio, 0.1);
  EXPECT_FALSE(p.probe_all_rows);

  p = parse_method("zipcache:probe=0.2,probe-kind=recent");
  EXPECT_DOUBLE_EQ(p.probes.recent_ratio, 0.2);
  EXPECT_DOUBLE_EQ(p.probes.random_ratio, 0.0);

  p = parse_method("zipcache:probe-kind=random");  // the default total, 10%
  EXPECT_DOUBLE_EQ(p.probes.recent_ratio, 0.0);
  EXPECT_DOUBLE_EQ(p.probes.random_ratio, 0.1);

  EXPECT_TRUE(parse_method("zipcache:probe-kind=all").probe_all_rows);

  p = parse_method("zipcache:probe-recent=0.03,probe-random=0.07");
  EXPECT_DOUBLE_EQ(p.probes.recent_ratio, 0.03);
  EXPECT_DOUBLE_EQ(p.probes.random_ratio, 0.07);

  // MiKV uses every row unless told otherwise.
  EXPECT_FALSE(parse_method("mikv:probe=0.1").probe_all_rows);
  EXPECT_FALSE(parse_method("mikv:probe-recent=0.1").probe_all_rows);
}

TEST(ParseMethod, BadSpecsNameTheProblem) {
  const auto has = [](const std::string& spec, const std::string& part) {
    const std::string e = error_of(spec);
    EXPECT_NE(e.find(part), std::string::npos) << spec << " -> '" << e << "'";
  };
  has("zip", "unknown method 'zip'");
  has("", "unknown method ''");
  has("KIVI2", "unknown method");
  has("zipcache:foo=1", "option 'foo' does not apply to zipcache");
  has("fp16:bits=4", "option 'bits' does not apply to fp16");
  has("h2o:ratio=0.2", "option 'ratio' does not apply to h2o");
  has("kivi2:hi=4", "option 'hi' does not apply to kivi2");
  has("zipcache:ratio", "'ratio' is not of the form key=value");
  has("zipcache:", "is not of the form key=value");
  has("zipcache:ratio=0.4,", "is not of the form key=value");
  has("zipcache:=3", "is not of the form key=value");
  has("zipcache:ratio=1.5", "option 'ratio' expects a number in [0, 1], got '1.5'");
  has("zipcache:ratio=abc", "got 'abc'");
  has("zipcache:ratio=0.4x", "got '0.4x'");
  has("zipcache:ratio=nan", "got 'nan'");
  has("zipcache:hi=3", "option 'hi' expects a bit width of 2, 4 or 8, got '3'");
  has("zipcache:lo=16", "option 'lo'");
  has("kivi2:bits=1", "option 'bits'");
  has("zipcache:gap=0", "option 'gap' expects an integer in [1,");
  has("zipcache:gap=-5", "option 'gap'");
  has("zipcache:gap=1.5", "option 'gap'");
  has("zipcache:block=-1", "option 'block'");
  has("zipcache:metric=fancy", "option 'metric' expects normalized, accumulated, recent or random");
  has("zipcache:norm=rows", "option 'norm' expects probes or full");
  has("zipcache:values=fp8", "option 'values'");
  has("zipcache:probe-kind=some", "option 'probe-kind'");
  has("zipcache:seed=-1", "option 'seed'");
  has("zipcache:probe-recent=0.7,probe-random=0.6", "probe ratios add up to");
  has("zipcache:probe=0.1,probe-recent=0.1", "either probe/probe-kind or probe-recent/probe-random");
  has("zipcache:ratio=0.1,ratio=0.2", "option 'ratio' given twice");
  has("kivi2:group=32,residual=48", "residual 48 is not a multiple of group 32");
  has("kivi2:group=0", "option 'group'");
  has("h2o:budget=0", "option 'budget' expects a number in (0, 1]");
  has("h2o:budget=1.01", "option 'budget'");
  // Every message names the spec it came from.
  has("zipcache:hi=3", "--kv 'zipcache:hi=3'");
}

// Equality takes every field: the GPU session reuses a runner (and its cache) only for
// an equal configuration, so two that differ anywhere must compare unequal.
TEST(ParseMethod, EqualityTakesEveryOption) {
  EXPECT_EQ(parse_method("zipcache"), parse_method("zipcache"));
  EXPECT_EQ(parse_method("kivi2:group=64,residual=128"), parse_method("kivi2:group=64,residual=128"));
  const MethodConfig base = parse_method("zipcache");
  for (const std::string spec :
       {"zipcache:ratio=0.3", "zipcache:hi=8", "zipcache:lo=4", "zipcache:gap=64", "zipcache:probe=0.2",
        "zipcache:seed=3", "zipcache:probe-kind=all", "zipcache:metric=accumulated", "zipcache:norm=full",
        "zipcache:values=tokenwise", "zipcache:block=128", "zipcache:keys=groupwise", "mikv", "fp16"}) {
    MethodConfig other = parse_method(spec);
    other.label = base.label;  // the options alone
    EXPECT_NE(other, base) << spec;
  }
  MethodConfig ratio = base;
  ratio.saliency_ratio = 0.4000001;  // a calibrated ratio that prints as the default
  EXPECT_NE(ratio, base);
  MethodConfig given = base;
  given.given_salient = {{0, 3}};
  EXPECT_NE(given, base);
  MethodConfig labelled = base;
  labelled.label = "zipcache@kivi2";
  EXPECT_NE(labelled, base);
}

TEST(ParseMethod, NamesDescriptionsAndHelp) {
  EXPECT_EQ(method_name(Method::Fp16), "fp16");
  EXPECT_EQ(method_name(Method::Fp32), "fp32");
  EXPECT_EQ(method_name(Method::Kivi), "kivi");
  EXPECT_EQ(method_name(Method::ZipCache), "zipcache");
  EXPECT_EQ(method_name(Method::H2O), "h2o");
  EXPECT_EQ(method_name(Method::MiKV), "mikv");

  const std::string z = describe(parse_method("zipcache:block=128"));
  for (const char* part : {"40%", "4 bits", "2 bits", "channelwise", "cstq", "normalized",
                           "norm probes", "5% recent", "5% random", "block of 128", "gap 100"}) {
    EXPECT_NE(z.find(part), std::string::npos) << part << " in " << z;
  }
  const std::string m = describe(parse_method("mikv"));
  EXPECT_NE(m.find("groupwise(32)"), std::string::npos) << m;
  EXPECT_NE(m.find("accumulated"), std::string::npos) << m;
  EXPECT_NE(m.find("all query rows"), std::string::npos) << m;
  const std::string k = describe(parse_method("kivi2"));
  EXPECT_NE(k.find("2-bit"), std::string::npos) << k;
  EXPECT_NE(k.find("128 tokens"), std::string::npos) << k;
  EXPECT_NE(describe(parse_method("h2o:budget=0.25")).find("25%"), std::string::npos);

  const std::string help = method_help();
  for (const char* part : {"fp32", "fp16", "kivi2", "zipcache", "mikv", "h2o", "ratio=", "gap=",
                           "probe-kind=", "budget=", "residual="}) {
    EXPECT_NE(help.find(part), std::string::npos) << part;
  }
}

}  // namespace
}  // namespace zc::kv
