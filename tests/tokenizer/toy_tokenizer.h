// Helpers of the tokenizer tests: small tokenizer.json files written to a temp folder.
#pragma once
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace toy {

// A fresh folder under zc_tok_test_<pid> in the system temp dir, unique per call; the
// whole tree is removed when the test binary exits.
inline std::filesystem::path temp_dir() {
  struct Root {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("zc_tok_test_" + std::to_string(::getpid()));
    ~Root() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Root root;
  static std::atomic<int> counter{0};
  const auto dir = root.path / std::to_string(counter++);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string write(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

// A BPE tokenizer.json with the given vocab (token -> id), merges and components.
inline nlohmann::json bpe_json(const nlohmann::json& vocab, const nlohmann::json& merges) {
  nlohmann::json j;
  j["version"] = "1.0";
  j["added_tokens"] = nlohmann::json::array();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = nullptr;
  j["post_processor"] = nullptr;
  j["decoder"] = nullptr;
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", nullptr}};
  return j;
}

inline nlohmann::json added(int id, const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
                            bool single_word = false, bool normalized = false) {
  return {{"id", id},         {"content", content}, {"special", special},      {"lstrip", lstrip},
          {"rstrip", rstrip}, {"single_word", single_word}, {"normalized", normalized}};
}

inline zc::tok::Tokenizer load(const nlohmann::json& j) {
  return zc::tok::Tokenizer::from_files(write(temp_dir() / "tokenizer.json", j.dump()));
}

}  // namespace toy
