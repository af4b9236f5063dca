// run_eval on a golden model (random weights) with a character-level tokenizer:
// every item is stored once, a rerun recomputes nothing, an interrupted run recomputes
// only what is missing (with identical outputs), and matched budgets hit the
// reference's measured ratio.
#include "eval/runner.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/generator.h"
#include "eval/items.h"
#include "common/char_tokenizer.h"
#include "eval/report.h"

namespace {

using namespace zc::eval;
namespace fs = std::filesystem;

using zc::test::write_char_tokenizer;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("zc_eval_runner_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    tokenizer_.emplace(zc::tok::Tokenizer::from_files(write_char_tokenizer(dir_)));
    plan_.model_dir = "golden/llama3-tiny";
    plan_.seed = 11;
    plan_.words = std::make_shared<WordLists>(WordLists{{"red", "odd", "tall"}, {"cat", "dog", "bend", "owl"}});
    TaskConfig lines;
    lines.kind = TaskKind::Lines, lines.size = 3, lines.items = 2, lines.max_new = 6, lines.params = "lines=3";
    TaskConfig passkey;
    passkey.kind = TaskKind::Passkey, passkey.size = 260, passkey.items = 2, passkey.max_new = 4;
    passkey.params = "tokens=260";
    plan_.tasks = {lines, passkey};
    for (const char* spec : {"fp16", "zipcache:gap=8", "h2o@zipcache:gap=8"}) {
      MethodEntry m;
      m.spec = spec;
      const std::string s = spec;
      m.config = zc::kv::parse_method(s.substr(0, s.find('@')));
      if (s.find('@') != std::string::npos) m.match_to = s.substr(s.find('@') + 1);
      plan_.methods.push_back(m);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string store_path() const { return (dir_ / "items.jsonl").string(); }

  static const zc::model::Model& model() {
    static const zc::model::Model m = zc::model::Model::load(std::string(ZC_TESTDATA_DIR) + "/models/llama3-tiny");
    return m;
  }

  fs::path dir_;
  std::optional<zc::tok::Tokenizer> tokenizer_;
  EvalPlan plan_;
};

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

TEST_F(RunnerTest, ResumeRecomputesNothingThenOnlyWhatIsMissing) {
  EvalRun first;
  {
    ItemStore store(store_path());
    int events = 0;
    RunHooks hooks;
    hooks.progress = [&](const ProgressEvent& e) {
      ++events;
      EXPECT_EQ(e.done, events);
      EXPECT_EQ(e.total, 12);
    };
    first = run_eval(model(), *tokenizer_, plan_, store, hooks);
    EXPECT_EQ(events, 12);
  }
  EXPECT_EQ(first.computed, 12);
  EXPECT_EQ(first.reused, 0);
  EXPECT_EQ(count_lines(store_path()), 12u);

  // Rerun: everything comes from the file.
  ItemStore again(store_path());
  const EvalRun second = run_eval(model(), *tokenizer_, plan_, again);
  EXPECT_EQ(second.computed, 0);
  EXPECT_EQ(second.reused, 12);
  EXPECT_EQ(count_lines(store_path()), 12u);
  ASSERT_EQ(second.items.size(), first.items.size());
  for (size_t i = 0; i < first.items.size(); ++i) EXPECT_EQ(to_json(second.items[i]), to_json(first.items[i]));

  // Interrupted after 9 items, the 10th half written: 3 are recomputed, equal to before.
  std::vector<std::string> lines;
  {
    std::ifstream in(store_path());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  {
    std::ofstream out(store_path(), std::ios::trunc);
    for (int i = 0; i < 9; ++i) out << lines[size_t(i)] << "\n";
    out << lines[9].substr(0, 40);
  }
  ItemStore resumed(store_path());
  EXPECT_EQ(resumed.warnings().size(), 1u);
  const EvalRun third = run_eval(model(), *tokenizer_, plan_, resumed);
  EXPECT_EQ(third.computed, 3);
  EXPECT_EQ(third.reused, 9);
  for (size_t i = 0; i < first.items.size(); ++i) {
    EXPECT_EQ(third.items[i].key(), first.items[i].key());
    EXPECT_EQ(third.items[i].output, first.items[i].output) << i;
    EXPECT_EQ(third.items[i].ratio, first.items[i].ratio) << i;
    EXPECT_EQ(third.items[i].resolved, first.items[i].resolved) << i;
  }
  // The summaries rebuilt from the file cover every configuration and method.
  const auto summaries = summarize(plan_, third.items);
  ASSERT_EQ(summaries.size(), 6u);
  for (const auto& s : summaries) EXPECT_EQ(s.n, 2);
}

TEST_F(RunnerTest, PromptsDoNotDependOnTheMethodAndBudgetsMatch) {
  ItemStore store(store_path());
  const EvalRun run = run_eval(model(), *tokenizer_, plan_, store);
  std::map<std::string, std::pair<int, std::string>> by_item;  // task/params/index -> prompt tokens, expected
  for (const auto& r : run.items) {
    const std::string k = r.task + r.params + std::to_string(r.index);
    const auto [it, fresh] = by_item.emplace(k, std::pair(r.prompt_tokens, r.expected));
    if (!fresh) {
      EXPECT_EQ(it->second, std::pair(r.prompt_tokens, r.expected)) << k << " " << r.method;
    }
    if (r.task == "passkey") {
      EXPECT_LE(r.prompt_tokens, 260);
    }
    if (r.method == "fp16") {
      EXPECT_EQ(r.ratio, 1.0);
    }
  }
  ASSERT_EQ(run.matches.size(), 2u);
  for (const auto& m : run.matches) {
    EXPECT_EQ(m.reference, "zipcache:gap=8");
    EXPECT_GT(m.calibration_runs, 1);
    EXPECT_TRUE(m.reached) << m.params << ": " << m.achieved_ratio << " vs " << m.target_ratio;
    EXPECT_EQ(m.resolved.rfind("h2o:budget=", 0), 0u) << m.resolved;
  }
}

// A method placed on another device runs every item through the decoders of
// RunHooks (here the CPU model's, counted), under keys of its own: the CPU's items of
// the same spec are not reused for it. Without decoders it is an error.
TEST_F(RunnerTest, MethodsOffTheCpuRunThroughTheHooksDecoders) {
  plan_.tasks.resize(1);
  plan_.methods.resize(2);  // fp16, zipcache:gap=8
  ItemStore store(store_path());
  const EvalRun cpu = run_eval(model(), *tokenizer_, plan_, store);
  ASSERT_EQ(cpu.computed, 4);

  plan_.methods[1].device = "cuda";
  EXPECT_THROW(run_eval(model(), *tokenizer_, plan_, store), zc::Error);
  RunHooks hooks;
  std::vector<int> contexts;
  hooks.decoders = [&](const zc::kv::MethodConfig& m, int context) {
    contexts.push_back(context);
    return zc::engine::cpu_decoder(model(), m, context);
  };
  std::vector<size_t> warm_ups;  // prompt lengths
  hooks.warm_up = [&](const zc::kv::MethodConfig& m, std::span<const int32_t> prompt) {
    EXPECT_EQ(m.method, zc::kv::Method::ZipCache);
    warm_ups.push_back(prompt.size());
  };
  const EvalRun off = run_eval(model(), *tokenizer_, plan_, store, hooks);
  EXPECT_EQ(off.reused, 2);    // fp16 stays on the CPU
  EXPECT_EQ(off.computed, 2);  // zipcache's two items, through the hooks
  ASSERT_EQ(contexts.size(), 2u);
  // Once, before the first item, with its prompt.
  ASSERT_EQ(warm_ups.size(), 1u);
  ASSERT_EQ(off.items.size(), 4u);
  EXPECT_EQ(int(warm_ups[0]), off.items[2].prompt_tokens);
  for (size_t i = 0; i < off.items.size(); ++i) {
    const ItemRecord& r = off.items[i];
    EXPECT_EQ(r.device, r.method == "fp16" ? "cpu" : "cuda");
    if (r.device == "cuda") {
      // The same decoder code as the CPU run: the same outputs, a context that holds
      // the prompt and the generated tokens.
      EXPECT_EQ(r.output, cpu.items[i].output);
      EXPECT_EQ(r.ratio, cpu.items[i].ratio);
      EXPECT_NE(r.key(), cpu.items[i].key());
      EXPECT_GE(contexts[size_t(r.index)], r.prompt_tokens + plan_.tasks[0].max_new);
    }
  }
  const auto summaries = summarize(plan_, off.items);
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[1].device, "cuda");
  const std::string table = format_tables(summaries, {});
  EXPECT_NE(table.find("device"), std::string::npos) << table;
  EXPECT_NE(table.find("  cuda\n"), std::string::npos) << table;
  plan_.methods[1].device = "cpu";  // every method on the CPU: no device column
  EXPECT_EQ(format_tables(summarize(plan_, cpu.items), {}).find("device"), std::string::npos);
}

TEST_F(RunnerTest, PromptsThatDoNotFitAreErrors) {
  plan_.tasks[1].size = 50;  // passkey: the prompt without filler is longer than 50 characters
  try {
    prepare_item(plan_, plan_.tasks[1], *tokenizer_, 0, 4096);
    FAIL();
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the target of 50"), std::string::npos) << e.what();
  }
  try {  // 3 lines are about 640 characters
    prepare_item(plan_, plan_.tasks[0], *tokenizer_, 0, 300);
    FAIL();
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the context of 300"), std::string::npos) << e.what();
  }
}

}  // namespace
