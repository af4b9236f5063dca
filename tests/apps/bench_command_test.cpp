// `zipcache bench` checks its options before touching a GPU, and says clearly when
// there is none (CI has no GPU; the GPU run itself is in tools/gpu_check.sh).
#include <gtest/gtest.h>

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

TEST(BenchCommand, WithoutAGpuSaysSo) {
  TempDir dir;
  const auto r = run_cli("bench --synthetic llama3-8b -b 1 -c 8 -n 4 --kv fp16", dir);
  if (r.exit_code == 0) GTEST_SKIP() << "a GPU is present: the benchmark ran";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("GPU"), std::string::npos) << r.err;
}

}  // namespace
