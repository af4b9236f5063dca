// `zipcache bench` checks its options before touching a GPU, and says clearly when
// there is none (CI has no GPU; the GPU run itself is in tools/gpu_check.sh).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;

TEST(BenchCommand, BadOptionsAreClearErrors) {
  TempDir dir;
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"bench --synthetic llama3-8b --format xml", "--format 'xml'"},
      {"bench --synthetic llama3-8b -b 0", "--batch 0"},
      {"bench --synthetic llama3-8b -c -5", "--context -5"},
      {"bench --synthetic llama3-8b -n 2", "--gen 2"},
      {"bench --synthetic nosuch-7b", "nosuch-7b"},
      {"bench --device cpu --profile -b 1 -c 8", "--profile"},
      {"bench --synthetic llama3-8b --profile --profile-steps 0", "--profile-steps 0"},
      {"bench --synthetic llama3-8b --reps 0", "--reps 0"},
      {"bench --synthetic llama3-8b --budget -5", "--budget -5"},
      {"bench --synthetic llama3-8b --budget nan", "--budget nan"},
      {"bench --synthetic llama3-8b --kv-mem -1", "--kv-mem -1"},
      {"bench --synthetic llama3-8b --kv-mem inf", "--kv-mem inf"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args, dir);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
  }
}

// On the CPU (--device cpu): the bundled model, two methods, two batch sizes; the JSON
// holds every run, the fp16 cache's bytes are exactly fp16, and bytes grow with batch.
TEST(BenchCommand, CpuRunsWriteJson) {
  TempDir dir;
  const auto r = run_cli("bench --device cpu -b 1,2 -c 32 -n 5 --kv fp16 --kv zipcache --format json -o " +
                             (dir / "bench.json").string(),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "bench.json"));
  ASSERT_EQ(j["runs"].size(), 4u);
  std::map<std::string, std::map<int, nlohmann::json>> by;
  for (const auto& run : j["runs"]) by[run["method"].get<std::string>()][run["batch"].get<int>()] = run;
  for (const auto& [method, runs] : by) {
    for (const auto& [batch, run] : runs) {
      EXPECT_GT(run["decode_ms"].get<double>(), 0.0) << method;
      EXPECT_GT(run["prefill_s"].get<double>(), 0.0) << method;
      // Throughput counts every timed step: batch / mean step. Five steps less three
      // warm-up ones leave two, so the mean lies between p10 and p90 (their min and max).
      const double mean = run["decode_mean_ms"].get<double>();
      EXPECT_GE(mean, run["decode_p10_ms"].get<double>()) << method;
      EXPECT_LE(mean, run["decode_p90_ms"].get<double>()) << method;
      EXPECT_NEAR(run["tokens_per_s"].get<double>(), batch * 1e3 / mean, 1e-6 * batch * 1e3);
      // Every timed step's ms, in order: the two after the warm-up, whose mean is the mean.
      const auto samples = run["decode_samples_ms"].get<std::vector<double>>();
      ASSERT_EQ(samples.size(), 2u) << method;
      EXPECT_NEAR((samples[0] + samples[1]) / 2, mean, 1e-9 * mean) << method;
    }
    EXPECT_EQ(runs.at(2)["kv_fp16_bytes"].get<size_t>(), 2 * runs.at(1)["kv_fp16_bytes"].get<size_t>()) << method;
  }
  EXPECT_EQ(by["fp16"][1]["kv_bytes"], by["fp16"][1]["kv_fp16_bytes"]);
  EXPECT_GT(by["zipcache"][1]["compression"].get<double>(), 2.0);
}

// --profile on the GPU (skipped without one): per run, the prefill and decode tables of
// GPU time per operation, with every operation of the forward pass by name and call
// counts that follow from the bundled model's config (6 layers). No speed is checked.
TEST(BenchCommand, ProfileListsEveryOperationPerRun) {
  TempDir dir;
  const auto r = run_cli("bench --device cuda -b 2 -c 48 -n 4 --kv fp16 --kv zipcache --profile --profile-steps 3 "
                         "--format json -o " + (dir / "bench.json").string(),
                         dir);
  if (r.exit_code != 0 && r.err.find("needs an NVIDIA GPU") != std::string::npos) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto config = nlohmann::json::parse(
      zc::test::read_text(std::string(ZC_SOURCE_DIR) + "/models/zipcache-tiny-19m/config.json"));
  const long long L = config["num_hidden_layers"].get<long long>();
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "bench.json"));
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const auto& run : j["runs"]) {
    SCOPED_TRACE(run["method"].get<std::string>());
    ASSERT_TRUE(run.contains("profile")) << run.dump();
    const auto& prefill = run["profile"]["prefill"];
    const auto& decode = run["profile"]["decode"];
    EXPECT_EQ(prefill["tokens"], 48);
    EXPECT_EQ(decode["steps"], 3);
    EXPECT_EQ(decode["batch"], 2);
    EXPECT_EQ(decode["regions"], 3);
    std::map<std::string, long long> pre_calls, dec_calls;
    for (const auto* phase : {&prefill, &decode}) {
      auto& calls = phase == &prefill ? pre_calls : dec_calls;
      double shares = 0, prev = 1e300;
      for (const auto& op : (*phase)["ops"]) {
        calls[op["name"].get<std::string>()] = op["calls"].get<long long>();
        shares += op["share"].get<double>();
        EXPECT_GE(op["total_ms"].get<double>(), 0.0);
        EXPECT_LE(op["total_ms"].get<double>(), prev) << "sorted longest first";
        prev = op["total_ms"].get<double>();
      }
      EXPECT_NEAR(shares, 1.0, 1e-9);
      EXPECT_GT((*phase)["timed_ms"].get<double>(), 0.0);
      EXPECT_GT((*phase)["wall_ms"].get<double>(), 0.0);
    }
    const std::map<std::string, long long> common = {
        {"embed", 1},  {"upload ids", 1}, {"rmsnorm", 2 * L + 1}, {"gemm qkv", L},
        {"gemm o", L}, {"gemm down", L},  {"lm head", 1}};
    std::map<std::string, long long> want_pre = common, want_dec;
    want_pre["rope + split qkv"] = want_pre["attention prefill"] = want_pre["cache prefill"] = L;
    want_pre["gemm gate/up"] = want_pre["silu*mul"] = L;  // 48 prompt rows: cuBLAS, then SwiGLU
    for (const auto& [name, n] : common) want_dec[name] = 3 * n;
    // Decode's 2 rows: gate/up and SwiGLU in one kernel (gemm.h), unless ZC_GEMV=0 or 1
    // sends them to cuBLAS (the bundled model has no MLP biases, a hidden size of 8k).
    const char* gemv = std::getenv("ZC_GEMV");
    if (gemv == nullptr || *gemv == '\0' || std::atoi(gemv) >= 2) {
      want_dec["gemm gate/up+silu"] = 3 * L;
    } else {
      want_dec["gemm gate/up"] = want_dec["silu*mul"] = 3 * L;
    }
    want_dec["cache step"] = 3;
    want_dec["cache append"] = want_dec["attention decode"] = 3 * L;
    EXPECT_EQ(pre_calls, want_pre);
    EXPECT_EQ(dec_calls, want_dec);
  }
  // At a budget's largest batch the profile times decode steps only (the caches were
  // filled without a prefill).
  const auto b = run_cli("bench --device cuda -b 1 -c 40 -n 4 --kv zipcache --budget 0.002 --profile --profile-steps 2 "
                         "--format json -o " + (dir / "budget.json").string(),
                         dir);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto jb = nlohmann::json::parse(zc::test::read_text(dir / "budget.json"));
  ASSERT_EQ(jb["largest_batch"].size(), 1u) << jb.dump();
  const auto& fit = jb["largest_batch"][0];
  ASSERT_TRUE(fit.contains("profile")) << fit.dump();
  EXPECT_FALSE(fit["profile"].contains("prefill")) << fit.dump();
  EXPECT_EQ(fit["profile"]["decode"]["steps"], 2);
  EXPECT_EQ(fit["profile"]["decode"]["batch"], fit["batch"]);
  std::map<std::string, long long> fit_calls;
  for (const auto& op : fit["profile"]["decode"]["ops"]) fit_calls[op["name"].get<std::string>()] = op["calls"];
  EXPECT_EQ(fit_calls["attention decode"], 2 * L);
  EXPECT_EQ(fit_calls["rmsnorm"], 2 * (2 * L + 1));
  EXPECT_EQ(fit_calls["cache step"], 2);
  // The table format prints both tables after the sweep.
  const auto t = run_cli("bench --device cuda -b 1 -c 40 -n 4 --kv kivi2 --profile", dir);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("profile: kivi2, batch 1, context 40"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("prefill of one sequence (40 tokens)"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("| attention prefill"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("decode, 5 eager steps of batch 1"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("| attention decode"), std::string::npos) << t.out;
}

TEST(BenchCommand, WithoutAGpuSaysSo) {
  TempDir dir;
  const auto r = run_cli("bench --synthetic llama3-8b -b 1 -c 8 -n 4 --kv fp16", dir);
  if (r.exit_code == 0) GTEST_SKIP() << "a GPU is present: the benchmark ran";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("GPU"), std::string::npos) << r.err;
}

}  // namespace
