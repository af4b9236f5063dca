// A character-level tokenizer.json for tests that run the golden models (vocabulary
// 512, no tokenizer of their own) on text: one BPE token per printable ASCII character
// (ids 0-94) and '\n' (95), no merges, words split by a Split regex.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace zc::test {

// Writes <dir>/tokenizer.json and returns its path.
inline std::string write_char_tokenizer(const std::filesystem::path& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int c = 32; c < 127; ++c) vocab[std::string(1, char(c))] = c - 32;
  vocab["\n"] = 95;
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "\\s*\\S+"}}}, {"behavior", "Isolated"}, {"invert", false}}},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}, {"unk_token", nullptr}}}};
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return (dir / "tokenizer.json").string();
}

}  // namespace zc::test
