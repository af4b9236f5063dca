// The shapes of well-known models, for `zipcache bench --synthetic NAME`: the config
// of the Hugging Face checkpoint, so a benchmark runs the exact architecture with
// random weights and no download.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace zc::model {

// "llama3-8b" (Meta-Llama-3.1-8B), "llama2-7b" (Llama-2-7b-hf), "mistral-7b"
// (Mistral-7B-v0.3), "qwen2.5-7b" (Qwen2.5-7B). Throws zc::Error listing the names.
ModelConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace zc::model
