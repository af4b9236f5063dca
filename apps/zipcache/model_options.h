// Options every model command shares: the model folder, threads and KV methods.
#pragma once
#include <cstdint>
#include <limits>
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
// A file shipped with zipcache (e.g. "data/eval/words.json"), found by walking up from
// the binary (build tree or install prefix), then in the current folder; "" if absent.
std::string find_bundled(const std::string& relative);
// The method as the user wrote it (e.g. "zipcache:ratio=0.3"), for table rows.
std::string method_label(const kv::MethodConfig& m);
// "1.23 MiB" style.
std::string human_bytes(double bytes);
// Check of a count option that may be 0: CLI11's NonNegativeNumber names its upper
// bound as DBL_MAX spelled out in 300 digits when it refuses a value.
inline CLI::Range non_negative_count() { return CLI::Range(0, std::numeric_limits<int>::max()); }
// A size in GiB given on the command line: 0 (the default) means "not given"
// (`when_unset` says what happens then); a negative or non-finite size is refused.
void check_gib_option(const char* option, double gib, const char* when_unset);
// --device cpu|cuda and --kv-mem GiB of a command that runs one model on either, with the
// KV pool defaulting to the context in fp16 (generate, chat, serve).
void add_device_options(CLI::App* sub, std::string& device, double& kv_mem_gib);
// A seed option (0 .. 2^64 - 1). Negative values are refused (CLI11 alone wraps "-1" to
// 2^64 - 1 without a word); given `drawn`, -1 draws a random seed, llama.cpp's
// convention, and sets *drawn so that the command can print the seed it used.
CLI::Option* add_seed_option(CLI::App* sub, const std::string& flags, uint64_t& seed, const std::string& help,
                             bool* drawn = nullptr);

}  // namespace zc::app
