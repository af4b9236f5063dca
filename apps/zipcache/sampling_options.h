// The sampling and stopping options generate, chat and serve share (llama.cpp's names).
#pragma once
#include <CLI/CLI.hpp>

#include "engine/generator.h"

namespace zc::app {

// Adds --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
// --frequency-penalty, --presence-penalty, -s/--seed
// (-1 draws one and sets *seed_drawn), --stop and --ignore-eos.
void add_sampling_options(CLI::App* sub, engine::GenerationOptions& gen, bool* seed_drawn);

}  // namespace zc::app
