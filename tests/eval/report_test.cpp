// Summaries from hand-made item records, against sums computed here in double.
#include "eval/report.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using namespace zc::eval;

EvalPlan plan_of(TaskKind kind, const std::string& params, int items) {
  EvalPlan p;
  p.model_dir = "/m", p.seed = 3;
  TaskConfig t;
  t.kind = kind, t.size = 40, t.items = items, t.params = params;
  p.tasks = {t};
  MethodEntry a, b;
  a.spec = "fp16", b.spec = "kivi2";
  p.methods = {a, b};
  return p;
}

ItemRecord rec(const EvalPlan& p, const std::string& method, int i) {
  ItemRecord r;
  r.model = p.model_dir, r.task = task_name(p.tasks[0].kind), r.params = p.tasks[0].params, r.method = method;
  r.index = i, r.seed = p.seed, r.resolved = method;
  r.correct = method == "fp16" ? true : i % 3 == 0;
  r.prompt_tokens = 100 + 10 * i, r.generated_tokens = 5 + i;
  r.prefill_seconds = 0.1 * (i + 1), r.decode_seconds = 0.05;
  r.ratio = method == "fp16" ? 1.0 : 3.5 + 0.1 * i;
  r.bits_per_value = 16.0 / r.ratio;
  r.nll = 2.0 + i, r.scored_tokens = 10;
  return r;
}

TEST(Report, AccuracyIntervalRatioAndThroughput) {
  const EvalPlan p = plan_of(TaskKind::Lines, "lines=40", 7);
  std::vector<ItemRecord> items;
  for (const char* m : {"fp16", "kivi2"})
    for (int i = 0; i < 7; ++i) items.push_back(rec(p, m, i));
  const auto s = summarize(p, items);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].method, "fp16");
  EXPECT_EQ(s[0].correct, 7);
  EXPECT_EQ(s[1].correct, 3);  // items 0, 3, 6
  EXPECT_DOUBLE_EQ(s[1].accuracy, 3.0 / 7.0);
  double ratio = 0, bits = 0, tokens = 0, secs = 0;
  for (int i = 0; i < 7; ++i) {
    ratio += 3.5 + 0.1 * i, bits += 16.0 / (3.5 + 0.1 * i);
    tokens += 105 + 11 * i, secs += 0.1 * (i + 1) + 0.05;
  }
  EXPECT_NEAR(s[1].ratio, ratio / 7, 1e-12);
  EXPECT_NEAR(s[1].bits_per_value, bits / 7, 1e-12);
  EXPECT_NEAR(s[1].tokens_per_second, tokens / secs, 1e-9);
  // Wilson 95% of 3/7, from the closed form.
  const double z = 1.959963984540054, n = 7, ph = 3.0 / 7;
  const double c = (ph + z * z / (2 * n)) / (1 + z * z / n);
  const double h = z / (1 + z * z / n) * std::sqrt(ph * (1 - ph) / n + z * z / (4 * n * n));
  EXPECT_NEAR(s[1].ci_lo, c - h, 1e-12);
  EXPECT_NEAR(s[1].ci_hi, c + h, 1e-12);
  const std::string table = format_tables(s, {});
  EXPECT_NE(table.find("lines lines=40: 7 items"), std::string::npos) << table;
  EXPECT_NE(table.find("42.9%"), std::string::npos) << table;
  EXPECT_NE(table.find("100.0%"), std::string::npos) << table;
  // A missing item is an error that names it.
  items.pop_back();
  try {
    summarize(p, items);
    FAIL();
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("kivi2 item 6"), std::string::npos) << e.what();
  }
}

TEST(Report, PerplexityPoolsTheLossOfAllWindows) {
  const EvalPlan p = plan_of(TaskKind::Perplexity, "ctx=20", 4);
  std::vector<ItemRecord> items;
  for (const char* m : {"fp16", "kivi2"})
    for (int i = 0; i < 4; ++i) items.push_back(rec(p, m, i));
  const auto s = summarize(p, items);
  EXPECT_NEAR(s[0].perplexity, std::exp((2.0 + 3.0 + 4.0 + 5.0) / 40.0), 1e-12);
  EXPECT_EQ(s[0].scored_tokens, 40);
  BudgetMatch m{"ppl", "ctx=20", "kivi2", "fp16", "kivi2:x", 1.0, 1.02, false, 3};
  const std::string table = format_tables(s, {m});
  EXPECT_NE(table.find("perplexity"), std::string::npos) << table;
  EXPECT_NE(table.find(" 4 windows"), std::string::npos) << table;
  EXPECT_NE(table.find("kivi2 ran as kivi2:x"), std::string::npos) << table;
  EXPECT_NE(table.find("not reachable"), std::string::npos) << table;
}

}  // namespace
