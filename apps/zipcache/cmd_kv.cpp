// `zipcache kv`: compress K/V tensors from a safetensors file (placeholder until the
// kv layer lands; replaced by the real command).
#include "commands.h"

namespace zc::app {

Command add_kv_command(CLI::App& app) {
  auto* sub = app.add_subcommand("kv", "Compress K/V tensors and report error and size");
  return {sub, [] { return 0; }};
}

}  // namespace zc::app
