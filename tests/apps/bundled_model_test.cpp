// The bundled model through `zipcache generate` with every KV method on a line-retrieval
// prompt made by the Python generator it was trained with (tests/data/bundled_prompts.json,
// an unseen seed): the fp16 cache must give the right number.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;

const std::string kRepo = ZC_SOURCE_DIR;

nlohmann::json prompts() {
  return nlohmann::json::parse(zc::test::read_text(kRepo + "/tests/data/bundled_prompts.json"));
}

// The number inside "is <N>" of an answer, or the first number.
std::string first_number(const std::string& s) {
  const size_t at = s.find_first_of("0123456789");
  if (at == std::string::npos) return "";
  return s.substr(at, s.find_first_not_of("0123456789", at) - at);
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
