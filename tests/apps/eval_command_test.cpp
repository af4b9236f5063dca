// `zipcache eval` end to end on a golden model folder (random weights) copied with a
// character-level tokenizer.json: two methods give the table, results.json and the
// PNG plots; a rerun recomputes nothing; GSM8k, perplexity and JSONL tasks run from
// files the test writes; bad options are one-line errors.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/char_tokenizer.h"
#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;
namespace fs = std::filesystem;

fs::path make_model(const TempDir& dir) {
  const fs::path model = dir / "model";
  fs::create_directories(model);
  fs::copy_file(zc::test::testdata("models/llama3-tiny/model.safetensors"), model / "model.safetensors");
  // A context of 2048 tokens, so that prompts too long for it are quick to make.
  auto config = nlohmann::json::parse(zc::test::read_text(zc::test::testdata("models/llama3-tiny/config.json")));
  config["max_position_embeddings"] = 2048;
  std::ofstream(model / "config.json") << config.dump();
  zc::test::write_char_tokenizer(model);
  return model;
}

bool is_png(const fs::path& p) {
  const std::string head = zc::test::read_text(p).substr(0, 8);
  return head == std::string("\x89PNG\r\n\x1a\n", 8);
}

TEST(EvalCommand, TwoMethodsGiveTableJsonAndPlotsAndResume) {
  TempDir dir;
  const fs::path model = make_model(dir);
  const fs::path out = dir / "out";
  const std::string args = "eval -m " + model.string() +
                           " --tasks lines,passkey --lines 2,4 --passkey-tokens 300 -n 2 --max-new 6 "
                           "--kv fp16 --kv zipcache:gap=8 --seed 7 -o " + out.string();
  const auto r = run_cli(args, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One table per configuration, both methods with ratio, accuracy and its interval.
  for (const char* s : {"lines lines=2", "lines lines=4", "passkey tokens=300", "95% CI", "bits/val", "1.00x", "zipcache:gap=8"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_NE(r.out.find("items: 12 computed, 0 reused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[0.0, 65.8]"), std::string::npos) << "Wilson 95% of 0/2\n" << r.out;

  const auto j = nlohmann::json::parse(zc::test::read_text(out / "results.json"));
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["version"].get<std::string>().rfind("zipcache ", 0), 0u);
  EXPECT_EQ(j["command_line"][1], "eval");
  EXPECT_EQ(j["summaries"].size(), 6u);
  EXPECT_EQ(j["items"].size(), 12u);
  for (const auto& s : j["summaries"]) {
    EXPECT_EQ(s["items"], 2);
    EXPECT_EQ(s["ci95"].size(), 2u);
    if (s["method"] == "fp16") {
      EXPECT_EQ(s["ratio"], 1.0);
    } else {
      EXPECT_GT(s["ratio"].get<double>(), 2.0);
    }
  }
  EXPECT_TRUE(fs::exists(out / "items.jsonl"));
  EXPECT_TRUE(fs::exists(out / "tables.txt"));

  // A rerun reads every item back.
  const auto again = run_cli(args, dir);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("items: 0 computed, 12 reused"), std::string::npos) << again.out;

  if (std::system("gnuplot --version >/dev/null 2>&1") != 0) {
    EXPECT_NE(r.err.find("gnuplot"), std::string::npos) << r.err;
    GTEST_SKIP() << "gnuplot is not installed (Debian: gnuplot-nox): the PNG checks are skipped";
  }
  for (const char* png : {"accuracy_vs_lines.png", "ratio_lines_lines-2-new-6.png", "ratio_passkey_tokens-300-new-6.png"}) {
    EXPECT_TRUE(is_png(out / png)) << png << "\n" << r.err;
    EXPECT_NE(r.out.find(png), std::string::npos);
  }
  EXPECT_EQ(j["plots"].size(), 4u);
}

TEST(EvalCommand, MissingGnuplotIsAWarning) {
  TempDir dir;
  const fs::path model = make_model(dir);
  const auto r = run_cli("eval -m " + model.string() + " --tasks kv --pairs 3 -n 1 --kv fp16 --gnuplot " +
                             (dir / "no-gnuplot").string() + " -o " + (dir / "out").string(),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("plots skipped"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out" / "ratio_kv_pairs-3.png"));
}

TEST(EvalCommand, FileTasksGsm8kPerplexityJsonl) {
  TempDir dir;
  const fs::path model = make_model(dir);
  std::ofstream(dir / "gsm8k.jsonl")
      << R"({"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3+4 = <<3+4=7>>7\n#### 7"})" "\n"
      << R"({"question": "A pen costs $2. What do 5 cost?", "answer": "5*2 = <<5*2=10>>10\n#### 10"})" "\n"
      << R"({"question": "What is 1,000 - 1?", "answer": "#### 999"})" "\n";
  std::ofstream(dir / "qa.jsonl") << R"({"prompt": "Say hi:", "answer": ["hi", "hello"]})" "\n"
                                  << R"({"prompt": "Two plus two is", "answer": 4})" "\n";
  std::string text;
  for (int i = 0; text.size() < 700; ++i) text += "line " + std::to_string(i * 7919 % 1000) + " says hello.\n";
  std::ofstream(dir / "text.txt") << text;
  const auto r = run_cli("eval -m " + model.string() + " --gsm8k " + (dir / "gsm8k.jsonl").string() + " --shots 1 " +
                             "--text " + (dir / "text.txt").string() + " --ppl-ctx 200 --jsonl " +
                             (dir / "qa.jsonl").string() + " --match contains --max-new 8 -n 0 " +
                             "--kv fp16 --kv kivi2 --no-plots -o " + (dir / "out").string(),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"gsm8k shots=1", "ppl ctx=200,prefix=100", "jsonl match=contains", "perplexity", "kivi2"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const auto j = nlohmann::json::parse(zc::test::read_text(dir / "out" / "results.json"));
  int gsm = 0, ppl = 0, qa = 0;
  for (const auto& s : j["summaries"]) {
    if (s["task"] == "gsm8k") {
      gsm = s["items"];
      EXPECT_TRUE(s.contains("accuracy"));
    } else if (s["task"] == "ppl") {
      ppl = s["items"];
      EXPECT_GT(s["perplexity"].get<double>(), 1.0);
    } else if (s["task"] == "jsonl") {
      qa = s["items"];
    }
  }
  EXPECT_EQ(gsm, 2);  // 3 problems, 1 shot
  EXPECT_EQ(ppl, int(text.size() / 200));
  EXPECT_EQ(qa, 2);
  EXPECT_FALSE(fs::exists(dir / "out" / "plots.gp"));
  for (const auto& item : j["items"]) {
    if (item["task"] == "gsm8k" && item["index"] == 0) {
      EXPECT_EQ(item["expected"], "10");
    }
  }
}

TEST(EvalCommand, BadOptionsAreOneLineErrors) {
  TempDir dir;
  const fs::path model = make_model(dir);
  const std::string m = "eval -m " + model.string() + " -o " + (dir / "out").string() + " ";
  const auto expect = [&](const std::string& args, const std::string& needle) {
    const auto r = run_cli(m + args, dir);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  };
  expect("--tasks lines,essay", "unknown task 'essay'");
  expect("--tasks gsm8k", "needs --gsm8k FILE");
  expect("--kv fp16@zipcache --kv zipcache", "only h2o and mikv");
  expect("--kv h2o@zipcache", "'zipcache', is not among the --kv methods");
  expect("--kv zipcache --kv h2o:budget=0.1@zipcache", "leave it out");
  expect("--kv fp16 --kv fp16", "given twice");
  expect("--tasks lines --lines 0", "--lines: 0 is not a positive size");
  expect("--tasks lines --words " + (dir / "none.json").string(), "none.json");
  expect("--tasks lines --lines 40 -n 1 --kv fp16", "more than the context of 2048");
  expect("--device cuda --kv-mem -2", "--kv-mem -2: GiB must be a positive number");
  const auto device = run_cli(m + "--device tpu", dir);
  EXPECT_NE(device.exit_code, 0);
  EXPECT_NE(device.err.find("tpu"), std::string::npos) << device.err;
  // Negative counts: refused by the option parser with the bound in plain digits (CLI11's
  // NonNegativeNumber wrote DBL_MAX out in full, ~300 digits).
  for (const std::string opt : {"-n", "--max-new", "--ppl-prefix"}) {
    const auto r = run_cli(m + opt + " -3", dir);
    EXPECT_NE(r.exit_code, 0) << opt;
    EXPECT_NE(r.err.find("-3 not in range 0 to 2147483647"), std::string::npos) << opt << "\n" << r.err;
    EXPECT_LT(r.err.size(), 200u) << opt << "\n" << r.err;
  }
}

}  // namespace
