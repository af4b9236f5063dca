// Generators of the synthetic long-context tasks, producing exactly the texts that
// tools/train/tasks.py produces (the bundled model was trained on those formats; the
// random draws differ, the strings do not):
//   lines     LongEval / LongChat line retrieval
//   passkey   the landmark-attention passkey prompt with the "grass is green" filler
//   kv        lost-in-the-middle JSON key-value lookup, 8-hex-digit keys and values
//   vartrack  variable assignments spread through filler text, chain-of-thought answer
// Each generator takes the item's own zc::Rng (seeded by item_seed), so an item is the
// same whichever method runs it and whatever other items exist.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"

namespace zc::eval {

inline constexpr std::string_view kLinesHeader =
    "Below is a record of lines I want you to remember. Each line begins with 'line <line index>' "
    "and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. For each line "
    "index, memorize its corresponding <REGISTER_CONTENT>. At the end of the record, I will ask you "
    "to retrieve the corresponding <REGISTER_CONTENT> of a certain line index. Now the record "
    "start:\n\n";
inline constexpr std::string_view kPasskeyTask =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "them. I will quiz you about the important information there.";
inline constexpr std::string_view kPasskeyGarbage =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
inline constexpr std::string_view kPasskeyQuestion = "What is the pass key? The pass key is";
inline constexpr std::string_view kKvHeader =
    "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n";
inline constexpr std::string_view kVartrackHeader =
    "Keep track of the variables in the text below. Some lines assign a value to a variable, "
    "either a number or another variable plus or minus a number.\n\n";

// A prompt, the answer the model was trained to give, and what scoring compares.
struct TaskItem {
  std::string prompt;     // given to the model (the tokenizer adds BOS)
  std::string reference;  // the full trained answer, e.g. " The <REGISTER_CONTENT> in line x is <7>."
  std::string expected;   // the value scoring compares with, e.g. "7"
};

// Adjective and noun lists for line names ("torpid-bend"), from data/eval/words.json.
struct WordLists {
  std::vector<std::string> adj, noun;
};
// Reads {"adj": [...], "noun": [...]}; zc::Error naming the file and field otherwise.
WordLists load_words(const std::string& path);

// Filler paragraphs for vartrack. tasks.py draws Brown-corpus paragraphs, which are not
// available at run time; the default is the passkey garbage sentences, one paragraph
// each, or the paragraphs (non-empty lines) of a text file the user gives.
struct Filler {
  std::vector<std::string> paragraphs;
};
Filler garbage_filler();
Filler load_filler(const std::string& path);

// `n_lines` distinct adjective-noun names, values 1..50000, one line asked.
TaskItem lines_item(const WordLists& words, Rng& rng, int n_lines);
// `filler_chars` characters of garbage filler around the key (a number in 1..50000).
TaskItem passkey_item(Rng& rng, int filler_chars);
// `n_pairs` draws of 8-hex-digit keys (duplicates dropped, as tasks.py does).
TaskItem kv_item(Rng& rng, int n_pairs);
// 4 to 14 variables in chains of 1 to 4, about `filler_chars` characters of filler.
TaskItem vartrack_item(const Filler& filler, Rng& rng, int filler_chars);

}  // namespace zc::eval
