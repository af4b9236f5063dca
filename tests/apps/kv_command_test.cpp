// End-to-end tests of `zipcache kv`: figures in its JSON are recomputed here in double
// precision from the tensors it writes, and bad files give one-line errors.
#include <algorithm>
#include <cmath>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/safetensors.h"
#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;

// Head-major [H, L, d] random tensors with a few outlier key channels.
struct Kv {
  int H, L, d, Hq;
  std::vector<float> q, k, v;
};

Kv make_kv(int H, int Hq, int L, int d, uint64_t seed) {
  zc::Rng rng(seed);
  Kv kv{H, L, d, Hq, {}, {}, {}};
  kv.k.resize(size_t(H) * L * d);
  kv.v.resize(kv.k.size());
  kv.q.resize(size_t(Hq) * L * d);
  for (size_t i = 0; i < kv.k.size(); ++i) {
    const bool outlier = (i % size_t(d)) == 3;
    kv.k[i] = rng.normal() * (outlier ? 10.0f : 1.0f);
    kv.v[i] = rng.normal();
  }
  for (auto& x : kv.q) x = rng.normal();
  return kv;
}

void write_kv(const std::string& path, const Kv& kv, bool with_q, std::vector<int64_t> salient = {}) {
  std::vector<zc::io::TensorToWrite> t;
  t.push_back({"k", zc::io::DType::F32, {kv.H, kv.L, kv.d}, kv.k, {}});
  t.push_back({"v", zc::io::DType::F32, {kv.H, kv.L, kv.d}, kv.v, {}});
  if (with_q) t.push_back({"q", zc::io::DType::F32, {kv.Hq, kv.L, kv.d}, kv.q, {}});
  if (!salient.empty())
    t.push_back({"salient", zc::io::DType::I64, {int64_t(salient.size())}, {}, salient});
  zc::io::write_safetensors(path, t);
}

double rel_l2(const std::vector<float>& ref, const std::vector<float>& x) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(ref[i]) - x[i]) * (double(ref[i]) - x[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

TEST(KvCommand, Kivi2FiguresMatchWrittenTensors) {
  TempDir dir;
  const Kv kv = make_kv(2, 4, 300, 64, 1);
  write_kv((dir / "in.safetensors").string(), kv, true);
  const auto r = run_cli("kv -i " + (dir / "in.safetensors").string() + " --kv kivi2 -o " +
                             (dir / "out.safetensors").string() + " --json " + (dir / "r.json").string(),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kivi2"), std::string::npos);
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "r.json"));
  zc::io::SafetensorsFile out((dir / "out.safetensors").string());
  const auto k = out.to_float("k"), v = out.to_float("v");
  const auto bits = out.to_int("bits");
  ASSERT_EQ(k.size(), kv.k.size());
  EXPECT_NEAR(j["results"][0]["k_rel_error"].get<double>(), rel_l2(kv.k, k), 1e-9);
  EXPECT_NEAR(j["results"][0]["v_rel_error"].get<double>(), rel_l2(kv.v, v), 1e-9);
  // KIVI (G=32, R=128): 300 tokens -> the oldest 160 quantized at 2 bits, the newest 140
  // in the fp16 window (R <= window < R + G).
  for (int h = 0; h < kv.H; ++h)
    for (int t = 0; t < kv.L; ++t) EXPECT_EQ(bits[size_t(h) * kv.L + t], t < 160 ? 2 : 16) << t;
  // fp16 bytes over stored bytes, from the JSON's own breakdown.
  const auto& b = j["results"][0]["bytes"];
  EXPECT_EQ(b["fp16_equivalent"].get<size_t>(), size_t(2) * 2 * kv.H * kv.L * kv.d);
  EXPECT_NEAR(j["results"][0]["compression_ratio"].get<double>(),
              b["fp16_equivalent"].get<double>() / b["total"].get<double>(), 1e-12);
}

TEST(KvCommand, GivenSalientTokensAreUsed) {
  TempDir dir;
  const Kv kv = make_kv(1, 1, 50, 64, 2);
  const std::vector<int64_t> salient = {0, 7, 8, 20, 49};
  write_kv((dir / "in.safetensors").string(), kv, false, salient);
  const auto r = run_cli("kv -i " + (dir / "in.safetensors").string() +
                             " --kv zipcache --json " + (dir / "r.json").string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "r.json"));
  EXPECT_EQ(j["results"][0]["salient_tokens"][0].get<std::vector<int64_t>>(), salient);
}

TEST(KvCommand, AttentionAwareMethodWithoutQueriesIsAnError) {
  TempDir dir;
  write_kv((dir / "in.safetensors").string(), make_kv(1, 1, 20, 64, 3), false);
  const auto r = run_cli("kv -i " + (dir / "in.safetensors").string() + " --kv zipcache", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'q' tensor"), std::string::npos) << r.err;
}

TEST(KvCommand, MalformedFilesGiveOneLineErrors) {
  TempDir dir;
  struct Case {
    std::string name, bytes, expect;
  };
  auto header = [](const std::string& json, size_t data) {
    std::string s(8, '\0');
    const uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
    return s + json + std::string(data, '\0');
  };
  std::string lying = header("{}", 0);
  lying[0] = '\x7f';  // claims a 127-byte header in a 10-byte file
  const std::vector<Case> cases = {
      {"truncated", std::string("\x10\x00\x00", 3), "shorter than"},
      {"lying", lying, "larger than the file"},
      {"dtype", header(R"({"k":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", 4), "Q7"},
      {"range", header(R"({"k":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 4), "out of range"},
      {"missing_v", header(R"({"k":{"dtype":"F32","shape":[1,1,1],"data_offsets":[0,4]}})", 4), "'v'"},
  };
  for (const auto& c : cases) {
    const auto path = dir / (c.name + ".safetensors");
    std::ofstream(path, std::ios::binary) << c.bytes;
    const auto r = run_cli("kv -i " + path.string() + " --kv fp16", dir);
    EXPECT_EQ(r.exit_code, 1) << c.name;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << ": " << r.err;
  }
}

// The demo's acceptance claims, read from its JSON: normalized saliency beats
// accumulated on attention-output error at equal bits, CSTQ beats tokenwise on V.
TEST(KvCommand, DemoShowsNormalizedAndCstqAdvantages) {
  TempDir dir;
  const auto r = run_cli("kv demo --tokens 512 --heads 4 --kv-heads 2 --json " + (dir / "d.json").string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "d.json"));
  std::map<std::string, nlohmann::json> by;
  for (const auto& m : j["results"]) by[m["method"].get<std::string>()] = m;
  ASSERT_TRUE(by.count("zipcache") && by.count("zipcache:metric=accumulated") &&
              by.count("zipcache:values=tokenwise"));
  EXPECT_LT(by["zipcache"]["attention_rel_error"].get<double>(),
            by["zipcache:metric=accumulated"]["attention_rel_error"].get<double>());
  EXPECT_NEAR(by["zipcache"]["bits_per_value"].get<double>(),
              by["zipcache:metric=accumulated"]["bits_per_value"].get<double>(), 1e-9);
  EXPECT_LT(by["zipcache"]["v_rel_error"].get<double>(),
            by["zipcache:values=tokenwise"]["v_rel_error"].get<double>());
  EXPECT_NE(r.out.find("normalized is LOWER"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CSTQ is LOWER"), std::string::npos) << r.out;
  EXPECT_TRUE(by.count("kivi2") && by.count("mikv"));
}

}  // namespace
