// Scoring of every task on hand-made model outputs, and GSM8k answer extraction.
#include "eval/scoring.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using namespace zc::eval;

TEST(Scoring, LinesTakesTheNumberAfterIsAngle) {
  const std::string good = " The <REGISTER_CONTENT> in line torpid-bend is <38125>.";
  EXPECT_TRUE(score_output(TaskKind::Lines, good, "38125").correct);
  EXPECT_EQ(score_output(TaskKind::Lines, good, "38125").extracted, "38125");
  EXPECT_FALSE(score_output(TaskKind::Lines, " The <REGISTER_CONTENT> in line torpid-bend is <38126>.", "38125").correct);
  // A numeric line index before the value does not fool it.
  EXPECT_EQ(lines_answer(" The <REGISTER_CONTENT> in line 17 is <4242>."), "4242");
  // Without "is <", the first integer; a prefix of the value is wrong.
  EXPECT_TRUE(score_output(TaskKind::Lines, " 38125", "38125").correct);
  EXPECT_FALSE(score_output(TaskKind::Lines, " is <3812", "38125").correct);
  EXPECT_FALSE(score_output(TaskKind::Lines, " I do not know.", "38125").correct);
  EXPECT_EQ(score_output(TaskKind::Lines, " I do not know.", "38125").extracted, "");
  EXPECT_FALSE(score_output(TaskKind::Lines, "", "1").correct);
}

TEST(Scoring, PasskeyTakesTheFirstInteger) {
  EXPECT_TRUE(score_output(TaskKind::Passkey, " 4711.", "4711").correct);
  EXPECT_TRUE(score_output(TaskKind::Passkey, " 4711. Remember it. 99", "4711").correct);
  EXPECT_FALSE(score_output(TaskKind::Passkey, " 99. The pass key is 4711", "4711").correct);
  EXPECT_FALSE(score_output(TaskKind::Passkey, " 47110.", "4711").correct);
  EXPECT_FALSE(score_output(TaskKind::Passkey, " no idea", "4711").correct);
}

TEST(Scoring, KvComparesTheQuotedValueExactly) {
  EXPECT_TRUE(score_output(TaskKind::Kv, " \"d1946192\"", "d1946192").correct);
  EXPECT_TRUE(score_output(TaskKind::Kv, " \"d1946192\"\nKey:", "d1946192").correct);
  EXPECT_FALSE(score_output(TaskKind::Kv, " \"d1946193\"", "d1946192").correct);
  EXPECT_FALSE(score_output(TaskKind::Kv, " \"d1946192a\"", "d1946192").correct);
  EXPECT_FALSE(score_output(TaskKind::Kv, " \"d194619", "d1946192").correct);  // cut off
  EXPECT_EQ(kv_answer(" \"d194619"), "d194619");
  // Without quotes: the first run of lower-case hex digits.
  EXPECT_TRUE(score_output(TaskKind::Kv, " d1946192", "d1946192").correct);
  EXPECT_EQ(kv_answer("  "), std::nullopt);
}

TEST(Scoring, VartrackTakesTheNumberAfterTheAnswerIs) {
  const std::string good = " c = b - 2, b = a + 4, a = 3, so b = 7, c = 5. The answer is 5.";
  EXPECT_TRUE(score_output(TaskKind::Vartrack, good, "5").correct);
  EXPECT_FALSE(score_output(TaskKind::Vartrack, good, "3").correct);
  EXPECT_FALSE(score_output(TaskKind::Vartrack, " c = b - 2, b = a + 4, a = 3, so b = 7, c = 5. The answer is 15.", "5").correct);
  // A cut-off chain: the last number of the output.
  EXPECT_EQ(vartrack_answer(" c = b - 2, b = a + 4, a = 3, so b = 7"), "7");
  EXPECT_FALSE(score_output(TaskKind::Vartrack, " c = b", "5").correct);
}

TEST(Scoring, Gsm8kReferenceAfterHashes) {
  EXPECT_EQ(gsm8k_reference("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  EXPECT_EQ(gsm8k_reference("#### 1,000"), "1000");
  EXPECT_EQ(gsm8k_reference("x\n#### -3"), "-3");
  EXPECT_EQ(gsm8k_reference("#### 2.50"), "2.5");
  EXPECT_EQ(gsm8k_reference("#### $18."), "18");
  EXPECT_EQ(gsm8k_reference("no marker 18"), std::nullopt);
  EXPECT_EQ(gsm8k_reference("#### eighteen"), std::nullopt);
}

TEST(Scoring, Gsm8kLastNumberOfTheOutput) {
  EXPECT_EQ(last_number("She sold 48 + 24 = 72 clips. The answer is 72."), "72");
  EXPECT_EQ(last_number("It costs $1,234.50 in all."), "1234.5");
  EXPECT_EQ(last_number("The total is 1,234,567"), "1234567");
  EXPECT_EQ(last_number("The change is -5 degrees"), "-5");
  EXPECT_EQ(last_number("a loss of -$20"), "-20");
  EXPECT_EQ(last_number("a loss of $-20"), "-20");
  EXPECT_EQ(last_number("0.50 per apple, so 3.0"), "3");
  EXPECT_EQ(last_number("007 agents"), "7");
  EXPECT_EQ(last_number("first 3, then 4, so 5, "), "5");
  EXPECT_EQ(last_number("1.5.3"), "3");
  EXPECT_EQ(last_number("no numbers here"), std::nullopt);
  EXPECT_EQ(last_number("-0.0"), "0");
  EXPECT_TRUE(score_output(TaskKind::Gsm8k, "So she has $1,000.00 left. The answer is 1,000.", "1000").correct);
  EXPECT_FALSE(score_output(TaskKind::Gsm8k, "The answer is 72. Then 5 more", "72").correct);
  EXPECT_TRUE(score_output(TaskKind::Gsm8k, "The answer is -3.", "-3").correct);
}

TEST(Scoring, NormalizeNumberRejectsOtherText) {
  EXPECT_EQ(normalize_number("12"), "12");
  EXPECT_EQ(normalize_number("  -$0012.3400 "), "-12.34");
  EXPECT_EQ(normalize_number("--3"), std::nullopt);
  EXPECT_EQ(normalize_number("3x"), std::nullopt);
  EXPECT_EQ(normalize_number("."), std::nullopt);
  EXPECT_EQ(normalize_number(""), std::nullopt);
}

TEST(Scoring, JsonlExactAndContains) {
  EXPECT_TRUE(score_jsonl("  Paris \n", {"Paris"}, Match::Exact).correct);
  EXPECT_FALSE(score_jsonl("Paris, France", {"Paris"}, Match::Exact).correct);
  EXPECT_TRUE(score_jsonl("Paris, France", {"Paris"}, Match::Contains).correct);
  EXPECT_TRUE(score_jsonl("It is Lyon.", {"Paris", "Lyon"}, Match::Contains).correct);
  EXPECT_FALSE(score_jsonl("anything", {"  "}, Match::Contains).correct);  // an empty answer matches nothing
  EXPECT_FALSE(score_jsonl("paris", {"Paris"}, Match::Exact).correct);    // case matters
}

TEST(Scoring, TaskAndMatchNames) {
  for (TaskKind k : {TaskKind::Lines, TaskKind::Passkey, TaskKind::Kv, TaskKind::Vartrack, TaskKind::Gsm8k,
                     TaskKind::Perplexity, TaskKind::Jsonl})
    EXPECT_EQ(parse_task(task_name(k)), k);
  EXPECT_THROW(parse_task("line"), zc::Error);
  EXPECT_THROW(parse_match("fuzzy"), zc::Error);
  EXPECT_THROW(score_output(TaskKind::Perplexity, "x", "y"), zc::Error);
}

}  // namespace
