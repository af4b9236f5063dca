// Helpers of the chat template tests: a throwing call's message, a source rendered with
// no messages, and a scratch folder for from_dir.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace zc::tok::testing {

// The zc::Error message of `f`, or "" when it does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const zc::Error& e) {
    return e.what();
  }
  return "";
}

inline std::string render_source(const std::string& source,
                                 const nlohmann::json& extra = nlohmann::json::object()) {
  return ChatTemplate::parse(source, "test.jinja").render(nlohmann::json::array(), false, extra);
}

// A scratch folder for from_dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("zc_chat_template_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace zc::tok::testing
