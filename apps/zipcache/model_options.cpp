#include "model_options.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "core/thread_pool.h"

namespace zc::app {

namespace fs = std::filesystem;

constexpr const char* kBundledModel = "zipcache-tiny-19m";

void add_model_options(CLI::App* sub, ModelOptions& o) {
  sub->add_option("-m,--model", o.model_dir,
                  "Hugging Face model folder (config.json, safetensors, tokenizer.json); "
                  "default: the bundled model");
  sub->add_option("-t,--threads", o.threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--kv", o.kv, "KV cache method NAME[:key=value,...] (repeatable); see --help");
}

void check_gib_option(const char* option, double gib, const char* when_unset) {
  if (!std::isfinite(gib) || gib < 0) fail("{} {}: GiB must be a positive number ({})", option, gib, when_unset);
}

void add_device_options(CLI::App* sub, std::string& device, double& kv_mem_gib) {
  sub->add_option("--device", device, "cpu, or cuda (bf16 weights on the GPU; fp16, kivi2/4, zipcache)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--kv-mem", kv_mem_gib, "--device cuda: GiB for the KV block pool (default: the context in fp16)");
}

CLI::Option* add_seed_option(CLI::App* sub, const std::string& flags, uint64_t& seed, const std::string& help,
                             bool* drawn) {
  CLI::Option* opt = sub->add_option_function<std::string>(
      flags,
      [&seed, drawn, flags](const std::string& text) {
        if (drawn != nullptr && text == "-1") {
          std::random_device rd;
          seed = (uint64_t(rd()) << 32) ^ uint64_t(rd());
          *drawn = true;
          return;
        }
        uint64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ec != std::errc() || ptr != end) {
          throw CLI::ValidationError(flags, fmt::format("'{}' is not a seed (an integer from 0 to 2^64 - 1{})", text,
                                                        drawn != nullptr ? ", or -1 for a random one" : ""));
        }
        seed = v;
      },
      help);
  return opt->type_name(drawn != nullptr ? "UINT|-1" : "UINT");
}

std::string find_bundled(const std::string& relative) {
  std::vector<fs::path> roots;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
      roots.push_back(p);
  roots.push_back(fs::current_path());
  for (const auto& root : roots)
    if (fs::exists(root / relative)) return (root / relative).string();
  return "";
}

// The bundled model: ZIPCACHE_MODEL, else models/zipcache-tiny-19m.
static std::string bundled_model_dir() {
  if (const char* env = std::getenv("ZIPCACHE_MODEL")) return env;
  const std::string dir = find_bundled(std::string("models/") + kBundledModel + "/config.json");
  if (dir.empty())
    fail("no model given (-m DIR) and the bundled model models/{} was not found", kBundledModel);
  return fs::path(dir).parent_path().string();
}

std::string resolve_model_dir(const ModelOptions& o) {
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
  const std::string dir = o.model_dir.empty() ? bundled_model_dir() : o.model_dir;
  if (!fs::is_directory(dir)) fail("{}: not a folder (expected a Hugging Face model folder)", dir);
  return dir;
}

std::vector<kv::MethodConfig> parse_methods(const std::vector<std::string>& specs,
                                            const std::vector<std::string>& fallback) {
  std::vector<kv::MethodConfig> out;
  for (const auto& s : specs.empty() ? fallback : specs) out.push_back(kv::parse_method(s));
  return out;
}

std::string method_label(const kv::MethodConfig& m) {
  return m.label.empty() ? kv::method_name(m.method) : m.label;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace zc::app
