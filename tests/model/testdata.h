// Shared helpers of the model tests: the golden models of ZC_TESTDATA_DIR, their
// golden.json cases, relative errors in double, and damaged temporary copies.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace zc::model::test {

inline std::string models_dir() { return std::string(ZC_TESTDATA_DIR) + "/models"; }

// Every golden model folder (sorted), e.g. "llama3-tiny".
inline std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(models_dir())) {
    if (std::filesystem::exists(e.path() / "golden.json"))
      names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct GoldenCase {
  std::vector<int32_t> prompt;
  std::vector<float> last_logits, first_logits;
  std::vector<double> all_logits_l2;
  std::vector<int32_t> greedy_ids;
  std::vector<double> greedy_margin;
};

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

inline std::vector<GoldenCase> golden_cases(const std::string& model) {
  const nlohmann::json j = read_json(models_dir() + "/" + model + "/golden.json");
  std::vector<GoldenCase> cases;
  for (const auto& c : j.at("cases")) {
    GoldenCase g;
    g.prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    g.last_logits = c.at("last_logits").get<std::vector<float>>();
    g.first_logits = c.at("first_logits").get<std::vector<float>>();
    g.all_logits_l2 = c.at("all_logits_l2").get<std::vector<double>>();
    g.greedy_ids = c.at("greedy_ids").get<std::vector<int32_t>>();
    g.greedy_margin = c.at("greedy_top2_margin").get<std::vector<double>>();
    cases.push_back(std::move(g));
  }
  return cases;
}

// ||a - b|| / ||b|| in double over n values.
inline double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = static_cast<double>(a[i]) - b[i];
    num += diff * diff;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline double l2(const float* a, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * a[i];
  return std::sqrt(s);
}

inline int32_t argmax(const float* a, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (a[i] > a[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// A writable copy of a golden model folder in a fresh temporary directory, removed
// when the object goes away.
class ModelCopy {
 public:
  explicit ModelCopy(const std::string& model) {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "zc_model_test_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (const auto& e : fs::directory_iterator(models_dir() + "/" + model)) {
      const fs::path to = fs::path(dir_) / e.path().filename();
      fs::copy_file(e.path(), to);
      fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write);
    }
  }
  ~ModelCopy() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ModelCopy(const ModelCopy&) = delete;
  ModelCopy& operator=(const ModelCopy&) = delete;
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  std::string dir_;
};

}  // namespace zc::model::test
