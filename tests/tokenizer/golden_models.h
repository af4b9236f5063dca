// The golden tokenizers (testdata/tokenizers/<model>) and their HF vectors, loaded once
// per test binary: loading is the slow part under sanitizers.
#pragma once
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace golden {

using zc::tok::Tokenizer;

struct Case {
  std::string text;
  std::vector<int32_t> ids, ids_with_special;
  std::string decoded;
};

struct Model {
  std::unique_ptr<Tokenizer> tok;
  std::vector<Case> cases;
  double load_ms = 0;
};

inline std::string dir_of(const std::string& name) { return std::string(ZC_TESTDATA_DIR) + "/tokenizers/" + name; }

// Each tokenizer is loaded once for the whole binary (loading is the slow part under
// sanitizers).
inline const Model& model(const std::string& name) {
  static std::map<std::string, Model> models;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = models.find(name);
  if (it != models.end()) return it->second;
  Model m;
  const auto t0 = std::chrono::steady_clock::now();
  m.tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir_of(name)));
  m.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::ifstream in(dir_of(name) + "/vectors.json");
  const auto j = nlohmann::json::parse(in);
  for (const auto& c : j.at("cases")) {
    m.cases.push_back(Case{c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>(),
                           c.at("ids_with_special").get<std::vector<int32_t>>(), c.at("decoded").get<std::string>()});
  }
  return models.emplace(name, std::move(m)).first->second;
}

}  // namespace golden
