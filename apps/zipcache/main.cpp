// zipcache: one program for generation, serving, benchmarks and accuracy of
// compressed KV caches. Errors print as one line on stderr with exit code 1.
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"zipcache: LLM inference with a compressed (ZipCache) KV cache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "zipcache 0.1.0");
  const std::vector<zc::app::Command> commands = {
      zc::app::add_demo_command(app),
      zc::app::add_generate_command(app),
      zc::app::add_chat_command(app),
      zc::app::add_serve_command(app),
      zc::app::add_perplexity_command(app),
      zc::app::add_info_command(app),
      zc::app::add_bench_command(app),
      zc::app::add_kv_command(app),
      zc::app::add_eval_command(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& command : commands) {
      if (command.sub->parsed()) return command.run();
    }
  } catch (const zc::Error& e) {
    std::fprintf(stderr, "zipcache: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zipcache: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
