// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> (std::function
// members of regex states; GCC bug 105562) in sanitizer builds. The pragma comes first so
// that it also covers <functional> included through gtest.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The generated prompts have exactly the formats of tools/train/tasks.py: the header
// strings are typed here again from that file, and each prompt is parsed back with
// regular expressions to check that its answer is the right one.
#include "eval/prompts.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/seed.h"

namespace {

using namespace zc::eval;

const std::string kLinesHeaderPy =
    "Below is a record of lines I want you to remember. Each line begins with 'line <line index>' and contains a "
    "'<REGISTER_CONTENT>' at the end of the line as a numerical value. For each line index, memorize its "
    "corresponding <REGISTER_CONTENT>. At the end of the record, I will ask you to retrieve the corresponding "
    "<REGISTER_CONTENT> of a certain line index. Now the record start:\n\n";
const std::string kGarbagePy =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

WordLists small_words() { return {{"torpid", "able", "odd"}, {"bend", "abode", "cat", "dog"}}; }

TEST(Prompts, LinesFormatAndAnswer) {
  const WordLists words = small_words();
  const std::regex line_re("line ([a-z]+-[a-z]+): REGISTER_CONTENT is <(\\d+)>\n");
  for (int n : {1, 2, 5, 6}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      zc::Rng rng(item_seed(seed, "lines", n));
      const TaskItem item = lines_item(words, rng, n);
      ASSERT_EQ(item.prompt.substr(0, kLinesHeaderPy.size()), kLinesHeaderPy);
      std::string body = item.prompt.substr(kLinesHeaderPy.size());
      std::map<std::string, std::string> values;
      std::smatch m;
      size_t count = 0;
      while (std::regex_search(body, m, line_re, std::regex_constants::match_continuous)) {
        EXPECT_TRUE(values.emplace(m[1], m[2]).second) << "names repeat: " << m[1];
        const long v = std::stol(m[2]);
        EXPECT_TRUE(v >= 1 && v <= 50000);
        const std::string name = m[1];
        const std::string adj = name.substr(0, name.find('-')), noun = name.substr(name.find('-') + 1);
        EXPECT_NE(std::find(words.adj.begin(), words.adj.end(), adj), words.adj.end());
        EXPECT_NE(std::find(words.noun.begin(), words.noun.end(), noun), words.noun.end());
        body = m.suffix();
        ++count;
      }
      EXPECT_EQ(count, size_t(n));
      std::smatch q;
      ASSERT_TRUE(std::regex_match(body, q, std::regex("\nNow the record is over\\. Tell me what is the "
                                                       "<REGISTER_CONTENT> in line ([a-z]+-[a-z]+)\\? I need "
                                                       "the number\\.")))
          << body;
      ASSERT_TRUE(values.count(q[1]));
      EXPECT_EQ(item.expected, values[q[1]]);
      EXPECT_EQ(item.reference, " The <REGISTER_CONTENT> in line " + q[1].str() + " is <" + values[q[1]] + ">.");
    }
  }
  zc::Rng rng(1);
  EXPECT_THROW(lines_item(words, rng, 0), zc::Error);
  EXPECT_THROW(lines_item(words, rng, 7), zc::Error) << "12 names cannot give 7 distinct lines at half load";
}

TEST(Prompts, PasskeyFormatAndFillerLength) {
  const std::string task =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will "
      "quiz you about the important information there.";
  std::string garbage;
  for (int i = 0; i < 400; ++i) garbage += (i ? " " : "") + kGarbagePy;
  while (garbage.size() < 90000) garbage = garbage + " " + garbage;
  for (int chars : {0, 1, 89, 500, 36000, 60001}) {
    zc::Rng rng(uint64_t(chars) + 3);
    const TaskItem item = passkey_item(rng, chars);
    // Five lines: task, filler before, the key sentence, filler after, question.
    std::vector<std::string> parts;
    std::stringstream ss(item.prompt);
    for (std::string l; std::getline(ss, l);) parts.push_back(l);
    ASSERT_EQ(parts.size(), 5u);
    EXPECT_EQ(parts[0], task);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(parts[2], m, std::regex("The pass key is (\\d+)\\. Remember it\\. (\\d+) is the pass key\\.")));
    EXPECT_EQ(m[1], m[2]);
    EXPECT_EQ(parts[4], "What is the pass key? The pass key is");
    const std::string& pre = parts[1];
    const std::string& post = parts[3];
    EXPECT_EQ(pre.size() + post.size(), size_t(chars));
    EXPECT_EQ(pre + post, garbage.substr(0, size_t(chars)));  // one filler text, cut at the key
    EXPECT_EQ(item.expected, m[1].str());
    EXPECT_EQ(item.reference, " " + m[1].str() + ".");
    const long key = std::stol(m[1]);
    EXPECT_TRUE(key >= 1 && key <= 50000);
  }
}

TEST(Prompts, KvFormatAndAnswer) {
  const std::string header = "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n";
  for (int n : {1, 2, 5, 33}) {
    zc::Rng rng{uint64_t(n)};
    const TaskItem item = kv_item(rng, n);
    ASSERT_EQ(item.prompt.substr(0, header.size()), header);
    std::smatch m;
    const std::string rest = item.prompt.substr(header.size());
    ASSERT_TRUE(std::regex_match(rest, m, std::regex("(\\{.*\\})\n\nKey: \"([0-9a-f]{8})\"\nCorresponding value:")));
    const auto obj = nlohmann::json::parse(m[1].str());
    EXPECT_EQ(obj.size(), size_t(n));  // no duplicate draws at these sizes
    // The exact layout of Python's f'"{k}": "{v}"' joined by ", ".
    EXPECT_TRUE(std::regex_match(m[1].str(), std::regex("\\{(\"[0-9a-f]{8}\": \"[0-9a-f]{8}\"(, )?)+\\}")));
    EXPECT_EQ(item.expected, obj[m[2].str()].get<std::string>());
    EXPECT_EQ(item.reference, " \"" + item.expected + "\"");
  }
}

// Parses the statements back and evaluates them in the test.
TEST(Prompts, VartrackChainAndAnswer) {
  const std::string header =
      "Keep track of the variables in the text below. Some lines assign a value to a variable, either a number or "
      "another variable plus or minus a number.\n\n";
  const std::regex stmt("([a-z]) = (?:(\\d+)|([a-z]) ([+-]) (\\d+));");
  for (int t = 0; t < 60; ++t) {
    const int chars = t % 3 == 0 ? 0 : 50 * t;
    zc::Rng rng(uint64_t(t) * 7 + 1);
    const TaskItem item = vartrack_item(garbage_filler(), rng, chars);
    ASSERT_EQ(item.prompt.substr(0, header.size()), header);
    std::smatch q;
    ASSERT_TRUE(std::regex_search(item.prompt, q, std::regex("\n\nQuestion: what is the value of ([a-z])\\?\nAnswer:$")));
    const std::string body = item.prompt.substr(header.size(), size_t(q.position(0)) - header.size());
    std::map<char, long> value;
    std::map<char, std::tuple<char, char, long>> def;
    size_t filler = 0;
    std::stringstream ss(body);
    for (std::string line; std::getline(ss, line);) {
      std::smatch m;
      if (std::regex_match(line, m, stmt)) {
        const char name = m[1].str()[0];
        ASSERT_FALSE(value.count(name)) << "assigned twice";
        if (m[2].matched) {
          value[name] = std::stol(m[2]);
        } else {
          const char prev = m[3].str()[0];
          ASSERT_TRUE(value.count(prev)) << "used before assignment: " << prev;
          const long d = std::stol(m[5]);
          value[name] = value[prev] + (m[4] == "+" ? d : -d);
          def[name] = {prev, m[4].str()[0], d};
        }
        EXPECT_GE(value[name], 0);
      } else {
        EXPECT_EQ(kGarbagePy.substr(0, line.size()), line) << "filler is garbage sentences";
        filler += line.size() + 1;
      }
    }
    EXPECT_TRUE(value.size() >= 4 && value.size() <= 14);
    if (chars == 0) {
      EXPECT_EQ(filler, 0u);
    } else {
      EXPECT_GE(filler, size_t(chars) * 9 / 10);
    }
    const char x = q[1].str()[0];
    std::string ans = " ", fwd;
    char y = x;
    std::vector<char> chain;
    for (; def.count(y); y = std::get<0>(def[y])) {
      chain.push_back(y);
      ans += std::string(1, y) + " = " + std::get<0>(def[y]) + " " + std::get<1>(def[y]) + " " + std::to_string(std::get<2>(def[y])) + ", ";
    }
    ans += std::string(1, y) + " = " + std::to_string(value[y]);
    for (size_t i = chain.size(); i-- > 0;) fwd += std::string(fwd.empty() ? "" : ", ") + chain[i] + " = " + std::to_string(value[chain[i]]);
    if (!chain.empty()) ans += ", so " + fwd;
    ans += ". The answer is " + std::to_string(value[x]) + ".";
    EXPECT_EQ(item.reference, ans);
    EXPECT_EQ(item.expected, std::to_string(value[x]));
  }
}

TEST(Prompts, ItemsAreReproducibleAndIndependent) {
  const WordLists words = small_words();
  auto make = [&](uint64_t base, const char* task, int i) {
    zc::Rng rng(item_seed(base, task, i));
    return lines_item(words, rng, 5).prompt;
  };
  EXPECT_EQ(make(1, "lines", 3), make(1, "lines", 3));
  EXPECT_NE(make(1, "lines", 3), make(1, "lines", 4));
  EXPECT_NE(make(1, "lines", 3), make(2, "lines", 3));
  EXPECT_NE(item_seed(1, "lines", 3), item_seed(1, "passkey", 3));
  std::set<uint64_t> seeds;
  for (int i = 0; i < 1000; ++i) seeds.insert(item_seed(7, "kv", i));
  EXPECT_EQ(seeds.size(), 1000u);
}

TEST(Prompts, WordAndFillerFilesAreChecked) {
  const std::string dir = ::testing::TempDir();
  const std::string bad = dir + "/zc_eval_bad_words.json";
  std::ofstream(bad) << R"({"adj": ["a"], "noun": []})";
  try {
    load_words(bad);
    FAIL();
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'noun'"), std::string::npos) << e.what();
  }
  std::ofstream(bad) << "not json";
  EXPECT_THROW(load_words(bad), zc::Error);
  EXPECT_THROW(load_words(dir + "/missing.json"), zc::Error);
  const std::string filler = dir + "/zc_eval_filler.txt";
  std::ofstream(filler) << "First paragraph.\n\n  \nSecond one.\r\n";
  EXPECT_EQ(load_filler(filler).paragraphs, (std::vector<std::string>{"First paragraph.", "Second one."}));
  std::ofstream(filler) << "\n \n";
  EXPECT_THROW(load_filler(filler), zc::Error);
}

TEST(Prompts, BundledWordListsLoad) {
  const WordLists w = load_words(std::string(ZC_SOURCE_DIR) + "/data/eval/words.json");
  EXPECT_GT(w.adj.size(), 1000u);
  EXPECT_GT(w.noun.size(), 1000u);
  for (const auto& s : w.adj) EXPECT_TRUE(std::regex_match(s, std::regex("[a-z]{3,11}"))) << s;
}

}  // namespace
