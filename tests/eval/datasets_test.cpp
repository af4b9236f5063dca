// GSM8k and JSONL files: a small GSM8k sample in the official format (written here),
// the few-shot prompt, and errors that name file:line and field.
#include "eval/datasets.h"

#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using namespace zc::eval;

std::string write(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/zc_eval_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Three problems in the layout of openai/grade-school-math test.jsonl.
const char* kSample =
    R"({"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"})"
    "\n"
    R"({"question": "A shop sold 1,200 pens at $2 each. How much money did it make?", "answer": "It made 1,200*2 = $<<1200*2=2400>>2,400.\n#### 2,400"})"
    "\n\n"
    R"({"question": "The temperature was 4 degrees and fell by 7. What is it now?", "answer": "4-7=<<4-7=-3>>-3\n#### -3"})"
    "\n";

TEST(Gsm8k, LoadsQuestionsSolutionsAndAnswers) {
  const auto problems = load_gsm8k(write("gsm8k.jsonl", kSample));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].answer, "72");
  EXPECT_EQ(problems[1].answer, "2400");
  EXPECT_EQ(problems[2].answer, "-3");
  EXPECT_EQ(problems[0].solution,
            "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.");
  EXPECT_EQ(problems[1].solution, "It made 1,200*2 = $2,400.");
  EXPECT_EQ(problems[2].question, "The temperature was 4 degrees and fell by 7. What is it now?");
}

TEST(Gsm8k, FewShotPrompt) {
  const auto problems = load_gsm8k(write("gsm8k.jsonl", kSample));
  const std::string prompt = gsm8k_prompt(std::span(problems).first(2), problems[2].question);
  const std::string want =
      "Question: " + problems[0].question + "\nAnswer: " + problems[0].solution + " The answer is 72.\n\n" +
      "Question: " + problems[1].question + "\nAnswer: It made 1,200*2 = $2,400. The answer is 2400.\n\n" +
      "Question: The temperature was 4 degrees and fell by 7. What is it now?\nAnswer:";
  EXPECT_EQ(prompt, want);
  EXPECT_EQ(gsm8k_prompt({}, "Q?"), "Question: Q?\nAnswer:");
}

void expect_error(const std::string& path, const std::string& needle, bool gsm) {
  try {
    if (gsm) load_gsm8k(path);
    else load_prompt_jsonl(path);
    FAIL() << "no error for " << needle;
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Gsm8k, BadFilesNameLineAndField) {
  expect_error(write("g1.jsonl", "{\"question\": \"q\", \"answer\": \"#### 1\"}\n{\"question\": \"q\"}\n"),
               "g1.jsonl:2: field 'answer'", true);
  expect_error(write("g2.jsonl", "{\"question\": \"q\", \"answer\": \"no marker\"}\n"), "g2.jsonl:1: field 'answer' has no number", true);
  expect_error(write("g3.jsonl", "{\"question\": 5, \"answer\": \"#### 1\"}\n"), "g3.jsonl:1: field 'question'", true);
  expect_error(write("g4.jsonl", "{broken\n"), "g4.jsonl:1: not a JSON", true);
  expect_error(write("g5.jsonl", "\n\n"), "no problems", true);
  expect_error(::testing::TempDir() + "/zc_eval_missing.jsonl", "cannot read", true);
}

TEST(PromptJsonl, AnswersOfEveryShape) {
  const auto items = load_prompt_jsonl(write("p.jsonl",
                                             "{\"prompt\": \"Capital of France?\", \"answer\": \"Paris\"}\n"
                                             "{\"prompt\": \"2+2=\", \"answer\": 4}\n"
                                             "{\"prompt\": \"Name a colour\", \"answer\": [\"red\", \"blue\"], \"extra\": 1}\n"));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].answers, std::vector<std::string>{"Paris"});
  EXPECT_EQ(items[1].answers, std::vector<std::string>{"4"});
  EXPECT_EQ(items[2].answers, (std::vector<std::string>{"red", "blue"}));
  expect_error(write("p2.jsonl", "{\"prompt\": \"x\"}\n"), "p2.jsonl:1: field 'answer' is missing", false);
  expect_error(write("p3.jsonl", "{\"prompt\": \"x\", \"answer\": []}\n"), "empty list", false);
  expect_error(write("p4.jsonl", "{\"prompt\": \"x\", \"answer\": {\"a\": 1}}\n"), "p4.jsonl:1: field 'answer' must be", false);
  expect_error(write("p5.jsonl", "[1, 2]\n"), "p5.jsonl:1: not a JSON object", false);
  expect_error(write("p6.jsonl", "{\"prompt\": \"\", \"answer\": \"a\"}\n"), "field 'prompt' is empty", false);
}

}  // namespace
