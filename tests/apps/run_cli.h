// Runs the zipcache binary (ZC_BINARY) as a user would, capturing exit code, stdout
// and stderr; temporary files live in a per-test directory.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace zc::test {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first run of digits in s ("" when none): the number of a line-retrieval answer.
inline std::string first_number(const std::string& s) {
  const size_t at = s.find_first_of("0123456789");
  if (at == std::string::npos) return "";
  return s.substr(at, s.find_first_not_of("0123456789", at) - at);
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            (std::string("zc_apps_") + info->test_suite_name() + "_" + info->name() + "_" +
             std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// args is appended to the binary path as a shell command line (quote it yourself);
// `input` is what the program reads on stdin.
inline CliResult run_cli(const std::string& args, const TempDir& dir, const std::string& input = "") {
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt", in = dir / "stdin.txt";
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd =
      std::string(ZC_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string() + " <" + in.string();
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

inline std::string testdata(const std::string& rel) { return std::string(ZC_TESTDATA_DIR) + "/" + rel; }

}  // namespace zc::test
