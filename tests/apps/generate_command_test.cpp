// `zipcache generate` and `zipcache info` on the golden model folders: greedy ids
// must be HF's wherever the reference's top-2 margin is clear.
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;

std::vector<int> parse_ids(const std::string& line) {
  std::vector<int> ids;
  std::stringstream ss(line);
  std::string item;
  while (std::getline(ss, item, ',')) ids.push_back(std::stoi(item));
  return ids;
}

class GoldenGenerate : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenGenerate, GreedyIdsMatchTransformers) {
  TempDir dir;
  const std::string model = zc::test::testdata("models/" + GetParam());
  const auto golden = nlohmann::json::parse(zc::test::read_text(model + "/golden.json"));
  const auto& c = golden["cases"].back();
  std::string ids;
  for (const auto& id : c["prompt_ids"]) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(id.get<int>());
  }
  const auto want = c["greedy_ids"].get<std::vector<int>>();
  const auto margin = c["greedy_top2_margin"].get<std::vector<double>>();
  const auto r = run_cli("generate -m " + model + " --ids " + ids + " --temp 0 --ignore-eos -n " +
                             std::to_string(want.size()) + " --kv fp32", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = parse_ids(r.out.substr(0, r.out.find('\n')));
  ASSERT_EQ(got.size(), want.size()) << r.out;
  // Identical up to the first step whose reference margin is too small to decide.
  for (size_t i = 0; i < want.size() && margin[i] > 1e-3; ++i) ASSERT_EQ(got[i], want[i]) << "step " << i;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos);
  EXPECT_NE(r.err.find("KV cache"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenGenerate,
                         ::testing::Values("llama3-tiny", "llama2-tiny", "mistral-tiny", "qwen2-tiny",
                                           "qwen3-tiny", "llama-f32-sharded"));

TEST(GenerateCommand, ZipcacheRunsThroughTheQuantizedCache) {
  TempDir dir;
  const std::string model = zc::test::testdata("models/llama3-tiny");
  const auto r = run_cli("generate -m " + model + " --ids 1,5,9,200,17,3,3,8 --temp 0 --ignore-eos -n 8 --kv zipcache", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("x,"), std::string::npos) << r.err;  // a compression ratio is reported
}

// -s -1 draws a seed and prints it; giving that seed back reproduces the sampled ids.
// Seeds outside 0 .. 2^64 - 1 are refused (CLI11 alone wrapped -5 to 2^64 - 5).
TEST(GenerateCommand, SeedMinusOneIsRandomAndReproducible) {
  TempDir dir;
  const std::string model = zc::test::testdata("models/llama3-tiny");
  const std::string base = "generate -m " + model + " --ids 1,5,9,200 --temp 1.5 --ignore-eos -n 24 --kv fp16 -s ";
  const auto drawn = run_cli(base + "-1", dir);
  ASSERT_EQ(drawn.exit_code, 0) << drawn.err;
  const size_t at = drawn.err.find("seed: ");
  ASSERT_NE(at, std::string::npos) << drawn.err;
  const std::string seed = drawn.err.substr(at + 6, drawn.err.find(' ', at + 6) - (at + 6));
  const auto again = run_cli(base + seed, dir);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, drawn.out) << "seed " << seed;
  EXPECT_EQ(again.err.find("seed: "), std::string::npos);  // printed only when drawn
  for (const std::string bad : {"-5", "18446744073709551616", "7x"}) {
    const auto r = run_cli(base + bad, dir);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.err.find("'" + bad + "' is not a seed"), std::string::npos) << bad << ": " << r.err;
  }
  // Where a seed defines the data (eval, bench, demo, kv demo), -1 is refused too.
  const auto eval = run_cli("eval -m " + model + " -s -1", dir);
  EXPECT_NE(eval.exit_code, 0);
  EXPECT_NE(eval.err.find("'-1' is not a seed"), std::string::npos) << eval.err;
}

TEST(GenerateCommand, BadInputsAreClearErrors) {
  TempDir dir;
  const std::string model = zc::test::testdata("models/llama3-tiny");
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"generate -m " + model + " --ids 1,2,x", "not a token id"},
      {"generate -m " + model + " --ids 1,99999", "vocabulary"},
      {"generate -m " + model + " --ids 1,2,3 -c 2", "context"},
      {"generate -m " + model + " --ids 1,2 --kv nosuch", "nosuch"},
      {"generate -m " + model + " --ids 1,2 --kv zipcache:ratio=7", "ratio"},
      {"generate -m /nonexistent --ids 1", "/nonexistent"},
      {"generate -m " + model + " --ids 1,2 --top-p 0", "top-p"},
      {"generate -m " + model + " --ids 1,2 -n -5", "-n -5"},
      {"generate -m " + model + " --ids 1,2 --kv-mem -2", "--kv-mem -2"},
      {"generate -m " + model + " --ids 1,2 --kv-mem nan", "--kv-mem nan"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args, dir);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
  }
}

TEST(InfoCommand, ReportsShapesAndParameterCount) {
  TempDir dir;
  const std::string model = zc::test::testdata("models/qwen3-tiny");
  const auto r = run_cli("info -m " + model + " --tokens 256", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cfg = nlohmann::json::parse(zc::test::read_text(model + "/config.json"));
  // Parameter count from the config, computed here: tied embeddings, q/k norms of head_dim.
  const long h = cfg["hidden_size"], i = cfg["intermediate_size"], v = cfg["vocab_size"], L = cfg["num_hidden_layers"];
  const long nh = cfg["num_attention_heads"], nkv = cfg["num_key_value_heads"], hd = cfg["head_dim"];
  const long per_layer = h * nh * hd + 2 * h * nkv * hd + nh * hd * h + 3 * h * i + 2 * h + 2 * hd;
  const long params = v * h + L * per_layer + h;
  EXPECT_NE(r.out.find("parameters      " + std::to_string(params)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Qwen3ForCausalLM"), std::string::npos);
  EXPECT_NE(r.out.find("zipcache"), std::string::npos);
}

}  // namespace
