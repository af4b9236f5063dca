// The aggregation and table of the op profiler (cuda/engine/op_report.h), on the CPU:
// no GPU needed. Expected totals, means and shares are recomputed here in double from
// the raw samples.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/engine/op_report.h"

namespace {

using zc::cuda::OpReport;
using zc::cuda::OpStat;
using zc::cuda::OpTally;

TEST(OpReport, TotalsMeansAndSharesOfRandomSamples) {
  zc::Rng rng(42);
  for (int n_names : {1, 3, 17}) {
    SCOPED_TRACE(n_names);
    OpTally tally;
    std::map<std::string, std::pair<long long, double>> want;  // calls, total ms
    const int samples = int(rng.integer(n_names, 40 * n_names));
    for (int i = 0; i < samples; ++i) {
      // Every name at least once, then random names; times over four decades.
      const int k = i < n_names ? i : int(rng.integer(0, n_names - 1));
      const std::string name = "op " + std::to_string(k);
      const double ms = std::pow(10.0, -3.0 + 4.0 * rng.uniform());
      tally.add(name, ms);
      ++want[name].first;
      want[name].second += ms;
    }
    for (int r = 0; r < 3; ++r) tally.add_region(1.5 + r);
    const OpReport rep = tally.report();
    ASSERT_EQ(rep.ops.size(), size_t(n_names));
    double sum = 0;
    for (const auto& [name, cw] : want) sum += cw.second;
    EXPECT_NEAR(rep.timed_ms(), sum, 1e-12 * sum);
    EXPECT_DOUBLE_EQ(rep.wall_ms, 1.5 + 2.5 + 3.5);
    EXPECT_EQ(rep.regions, 3);
    double shares = 0;
    for (size_t i = 0; i < rep.ops.size(); ++i) {
      const OpStat& op = rep.ops[i];
      ASSERT_TRUE(want.count(op.name)) << op.name;
      EXPECT_EQ(op.calls, want[op.name].first) << op.name;
      EXPECT_NEAR(op.total_ms, want[op.name].second, 1e-12 * want[op.name].second) << op.name;
      EXPECT_NEAR(op.mean_us(), want[op.name].second * 1000.0 / double(want[op.name].first), 1e-9) << op.name;
      EXPECT_NEAR(rep.share(op), want[op.name].second / sum, 1e-12) << op.name;
      shares += rep.share(op);
      if (i > 0) {
        EXPECT_GE(rep.ops[i - 1].total_ms, op.total_ms) << "sorted longest first";
      }
      EXPECT_EQ(rep.find(op.name), &op);
    }
    EXPECT_NEAR(shares, 1.0, 1e-12);
    EXPECT_EQ(rep.find("no such op"), nullptr);
  }
}

TEST(OpReport, EqualTotalsSortByNameAndClearForgets) {
  OpTally tally;
  tally.add("rope", 2.0);
  tally.add("gemm o", 1.0);
  tally.add("gemm o", 1.0);
  tally.add("embed", 0.0);  // a zero-length operation is legal
  const OpReport rep = tally.report();
  ASSERT_EQ(rep.ops.size(), 3u);
  EXPECT_EQ(rep.ops[0].name, "gemm o");
  EXPECT_EQ(rep.ops[1].name, "rope");
  EXPECT_EQ(rep.ops[2].name, "embed");
  EXPECT_EQ(rep.ops[0].calls, 2);
  EXPECT_DOUBLE_EQ(rep.ops[0].mean_us(), 1000.0);
  EXPECT_EQ(rep.regions, 0);
  tally.clear();
  EXPECT_TRUE(tally.report().empty());
  EXPECT_EQ(tally.report().timed_ms(), 0.0);
  OpReport none;
  EXPECT_EQ(none.share(OpStat{"x", 1, 1.0}), 0.0);  // nothing timed: no division by zero
}

TEST(OpReport, BadSamplesAreErrorsNamingTheOperation) {
  OpTally tally;
  EXPECT_THROW(tally.add("", 1.0), zc::Error);
  for (double bad : {-0.5, std::nan(""), std::numeric_limits<double>::infinity()}) {
    try {
      tally.add("gemm qkv", bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find("gemm qkv"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(tally.add_region(-1.0), zc::Error);
  EXPECT_THROW(tally.add_region(std::nan("")), zc::Error);
  EXPECT_TRUE(tally.report().empty()) << "rejected samples leave no trace";
}

TEST(OpReport, TableListsOperationsLongestFirstWithShares) {
  OpTally tally;
  tally.add("gemm gate/up", 30.0);
  tally.add("gemm gate/up", 30.0);
  tally.add("attention decode", 25.0);
  tally.add("silu*mul", 15.0);
  tally.add_region(125.0);
  const std::string t = zc::cuda::format_op_table(tally.report());
  const size_t a = t.find("| gemm gate/up"), b = t.find("| attention decode"), c = t.find("| silu*mul");
  ASSERT_NE(a, std::string::npos) << t;
  ASSERT_NE(b, std::string::npos) << t;
  ASSERT_NE(c, std::string::npos) << t;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  // 60 of 100 ms, 2 calls of 30000 us; 25%; 15%.
  const std::string row_a = t.substr(a, t.find('\n', a) - a);
  EXPECT_NE(row_a.find(" 2 "), std::string::npos) << row_a;
  EXPECT_NE(row_a.find("60.000"), std::string::npos) << row_a;
  EXPECT_NE(row_a.find("30000.00"), std::string::npos) << row_a;
  EXPECT_NE(row_a.find("60.0%"), std::string::npos) << row_a;
  EXPECT_NE(t.find("25.0%", b), std::string::npos);
  EXPECT_NE(t.find("15.0%", c), std::string::npos);
  const size_t total = t.find("| timed ops");
  ASSERT_NE(total, std::string::npos) << t;
  EXPECT_NE(t.find("100.000", total), std::string::npos) << t;
  // The wall line: 125 ms, of which the operations cover 80%.
  EXPECT_NE(t.find("wall 125.000 ms over 1 region;"), std::string::npos) << t;
  EXPECT_NE(t.find("80.0%"), std::string::npos) << t;
  // Every row has the same width (a markdown table).
  size_t width = std::string::npos;
  for (size_t at = 0; at < t.size();) {
    const size_t end = t.find('\n', at);
    const std::string line = t.substr(at, end - at);
    if (line.rfind("|", 0) == 0) {
      if (width == std::string::npos) width = line.size();
      EXPECT_EQ(line.size(), width) << line;
    }
    at = end + 1;
  }
  EXPECT_EQ(t.find("ms/pass"), std::string::npos) << "one pass: no per-pass column";
  EXPECT_EQ(zc::cuda::format_op_table(OpReport{}), "(no operations timed)\n");

  // Over 4 passes (e.g. decode steps): a ms/pass column, 60 / 4 = 15 for gemm gate/up,
  // 100 / 4 = 25 for the sum, and the wall per pass 125 / 4.
  const std::string p = zc::cuda::format_op_table(tally.report(), 4);
  ASSERT_NE(p.find("ms/pass"), std::string::npos) << p;
  const size_t pa = p.find("| gemm gate/up");
  const std::string prow = p.substr(pa, p.find('\n', pa) - pa);
  EXPECT_NE(prow.find("|   15.000 |"), std::string::npos) << prow;
  const size_t pt = p.find("| timed ops");
  EXPECT_NE(p.substr(pt, p.find('\n', pt) - pt).find("|   25.000 |"), std::string::npos) << p;
  EXPECT_NE(p.find("(31.250 ms per pass of 4)"), std::string::npos) << p;
  width = std::string::npos;
  for (size_t at = 0; at < p.size();) {
    const size_t end = p.find('\n', at);
    const std::string line = p.substr(at, end - at);
    if (line.rfind("|", 0) == 0) {
      if (width == std::string::npos) width = line.size();
      EXPECT_EQ(line.size(), width) << line;
    }
    at = end + 1;
  }
}

}  // namespace
