// `zipcache bench` checks its options before touching a GPU, and says clearly when
// there is none (CI has no GPU; the GPU run itself is in tools/gpu_check.sh).
#include <gtest/gtest.h>

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
      EXPECT_NEAR(run["tokens_per_s"].get<double>(), batch * 1e3 / run["decode_ms"].get<double>(), 1e-6 * batch * 1e3);
    }
    EXPECT_EQ(runs.at(2)["kv_fp16_bytes"].get<size_t>(), 2 * runs.at(1)["kv_fp16_bytes"].get<size_t>()) << method;
  }
  EXPECT_EQ(by["fp16"][1]["kv_bytes"], by["fp16"][1]["kv_fp16_bytes"]);
  EXPECT_GT(by["zipcache"][1]["compression"].get<double>(), 2.0);
}

TEST(BenchCommand, WithoutAGpuSaysSo) {
  TempDir dir;
  const auto r = run_cli("bench --synthetic llama3-8b -b 1 -c 8 -n 4 --kv fp16", dir);
  if (r.exit_code == 0) GTEST_SKIP() << "a GPU is present: the benchmark ran";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("GPU"), std::string::npos) << r.err;
}

}  // namespace
