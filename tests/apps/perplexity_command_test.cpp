// `zipcache perplexity` end to end: a golden model folder copied with a small
// character-level tokenizer.json (ids fit its 512-token vocabulary).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/char_tokenizer.h"
#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;


TEST(PerplexityCommand, TableHasEveryMethodWithItsRatio) {
  TempDir dir;
  const auto model = dir / "model";
  std::filesystem::create_directories(model);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(zc::test::testdata(std::string("models/llama3-tiny/") + f), model / f);
  zc::test::write_char_tokenizer(model);
  std::string text;
  for (int i = 0; text.size() < 700; ++i) {
    text += "line ";
    text += std::to_string(i * 7919 % 1000);
    text += " says hello.\n";
  }
  std::ofstream(dir / "text.txt") << text;
  const auto r = run_cli("perplexity -m " + model.string() + " -f " + (dir / "text.txt").string() +
                             " --ctx 300 --prefix 150 --kv fp16 --kv kivi2 --kv zipcache:gap=50", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* m : {"fp16", "kivi2", "zipcache"}) EXPECT_NE(r.out.find(m), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("perplexity"), std::string::npos);
  EXPECT_NE(r.out.find("1.00x"), std::string::npos) << r.out;  // fp16's ratio
  // Two windows of 300 tokens, 150 decoded each.
  EXPECT_NE(r.out.find(" 300 "), std::string::npos) << r.out;
}

TEST(PerplexityCommand, TooShortTextAndMissingFileAreErrors) {
  TempDir dir;
  std::ofstream(dir / "short.txt") << "hi";
  const std::string model = zc::test::testdata("models/llama3-tiny");
  auto r = run_cli("perplexity -m " + model + " -f " + (dir / "missing.txt").string(), dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
  // The golden folder has no tokenizer.json: the error names the file.
  r = run_cli("perplexity -m " + model + " -f " + (dir / "short.txt").string(), dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
  // With a tokenizer (the bundled model): a text shorter than one window, and a prefix
  // that leaves nothing to decode, are refused before anything is printed.
  r = run_cli("perplexity -f " + (dir / "short.txt").string(), dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fewer than one window of --ctx 512"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  r = run_cli("perplexity -f " + (dir / "short.txt").string() + " --ctx 64 --prefix 64", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--prefix 64 must be smaller than --ctx 64"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  // --device and --kv-mem: refused before the model loads.
  r = run_cli("perplexity -f " + (dir / "short.txt").string() + " --device cuda --kv-mem -1", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--kv-mem -1: GiB must be a positive number"), std::string::npos) << r.err;
  r = run_cli("perplexity -f " + (dir / "short.txt").string() + " --device tpu", dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tpu"), std::string::npos) << r.err;
}

}  // namespace
