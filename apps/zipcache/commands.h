// Each subcommand of the zipcache program registers itself on the CLI11 app and
// returns the function that runs it once options are parsed.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace zc::app {

using Runner = std::function<int()>;
struct Command {
  CLI::App* sub;
  Runner run;
};

Command add_kv_command(CLI::App& app);
Command add_demo_command(CLI::App& app);
Command add_generate_command(CLI::App& app);
Command add_perplexity_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_chat_command(CLI::App& app);
Command add_serve_command(CLI::App& app);

}  // namespace zc::app
