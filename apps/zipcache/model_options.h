// Options every model command shares: the model folder, threads and KV methods.
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kv/method.h"

namespace zc::app {

struct ModelOptions {
  std::string model_dir;
  int threads = 0;                  // 0: all cores
  std::vector<std::string> kv = {};  // --kv specs
};

// Adds -m, -t and --kv (repeatable, default `default_kv`).
void add_model_options(CLI::App* sub, ModelOptions& o);
// Applies -t and resolves the model folder (the bundled model when -m is absent).
std::string resolve_model_dir(const ModelOptions& o);
std::vector<kv::MethodConfig> parse_methods(const std::vector<std::string>& specs,
                                            const std::vector<std::string>& fallback);
// "1.23 MiB" style.
std::string human_bytes(double bytes);

}  // namespace zc::app
