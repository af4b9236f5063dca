// The bundled model through `zipcache generate` with every KV method on a line-retrieval
// prompt made by the Python generator it was trained with (tests/data/bundled_prompts.json,
// an unseen seed): the fp16 cache must give the right number.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace {

using zc::test::first_number;
using zc::test::run_cli;
using zc::test::TempDir;

const std::string kRepo = ZC_SOURCE_DIR;

nlohmann::json prompts() {
  return nlohmann::json::parse(zc::test::read_text(kRepo + "/tests/data/bundled_prompts.json"));
}

TEST(BundledModel, LineRetrievalWithEveryKvMethod) {
  TempDir dir;
  const auto all = prompts();
  const auto& c = all["cases"][0];
  std::ofstream(dir / "prompt.txt") << c["prompt"].get<std::string>();
  const std::string want = first_number(c["answer"].get<std::string>());
  ASSERT_FALSE(want.empty());
  for (const std::string method : {"fp16", "kivi2", "kivi4", "zipcache", "h2o", "mikv"}) {
    // No -m: the bundled model is the default.
    const auto r = run_cli("generate -f " + (dir / "prompt.txt").string() + " --temp 0 -n 24 --kv " + method, dir);
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    std::printf("%-9s answer:%s\n", method.c_str(), r.out.c_str());
    EXPECT_NE(r.err.find("KV cache"), std::string::npos) << method;
    if (method == "fp16") {
      EXPECT_EQ(first_number(r.out), want) << r.out;
      EXPECT_NE(r.out.find("REGISTER_CONTENT"), std::string::npos) << r.out;
    }
  }
}

}  // namespace

namespace {

TEST(DemoCommand, AnswersWithFp16AndZipcacheAndReportsMemory) {
  zc::test::TempDir dir;
  const auto r = zc::test::run_cli("demo --tokens 600", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[fp16] answer:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[zipcache] answer:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.00x"), std::string::npos) << r.out;  // fp16's ratio
  EXPECT_NE(r.out.find("prefill tok/s"), std::string::npos) << r.out;
  // The fp16 answer to this seed's prompt is right (checked against the prompt's own value).
  EXPECT_NE(r.out.find("-> correct"), std::string::npos) << r.out;
}

}  // namespace

namespace {

bool is_png(const std::filesystem::path& p) {
  return zc::test::read_text(p).substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8);
}

// Issue 5's end-to-end check on the bundled model: two methods -> the table, the JSON
// and the PNG; the fp16 cache answers these short prompts.
TEST(BundledModel, EvalOfTwoMethodsWritesTableJsonAndPlots) {
  zc::test::TempDir dir;
  const auto out = dir / "out";
  const auto r = zc::test::run_cli(
      "eval --tasks lines,passkey --lines 5,10 --passkey-tokens 300 -n 2 --kv fp16 --kv zipcache -o " +
          out.string(),
      dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"lines lines=5", "lines lines=10", "passkey tokens=300", "95% CI", "fp16", "zipcache"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const auto j = nlohmann::json::parse(zc::test::read_text(out / "results.json"));
  EXPECT_EQ(j["summaries"].size(), 6u);
  EXPECT_EQ(j["items"].size(), 12u);
  EXPECT_NE(j["model"].get<std::string>().find("zipcache-tiny-19m"), std::string::npos);
  for (const auto& s : j["summaries"]) {
    if (s["method"] == "fp16") {
      EXPECT_EQ(s["accuracy"].get<double>(), 1.0) << s.dump();
    } else {
      EXPECT_GT(s["ratio"].get<double>(), 2.0) << s.dump();
    }
  }
  if (std::system("gnuplot --version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "gnuplot is not installed (Debian: gnuplot-nox): the PNG check is skipped";
  EXPECT_TRUE(is_png(out / "accuracy_vs_lines.png")) << r.err;
}

}  // namespace
