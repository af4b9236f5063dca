// Loading damaged copies of golden model folders (made under /tmp): a missing
// tensor, a wrong shape, a missing bias, a config field of the wrong type, an unknown
// architecture, a truncated shard. Each is a zc::Error that says what and where.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/testdata.h"

namespace zc::model {
namespace {

std::string load_error(const std::string& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading " << dir << " succeeded";
  return "";
}

// Rewrites a safetensors file (as fp32), letting `edit` drop (return false) or
// reshape a tensor.
void rewrite(const std::string& path, const std::function<bool(io::TensorToWrite&)>& edit) {
  std::vector<io::TensorToWrite> tensors;
  {
    const io::SafetensorsFile f(path);
    for (const std::string& name : f.names()) {
      io::TensorToWrite t;
      t.name = name;
      t.dtype = io::DType::F32;
      t.shape = f.info(name).shape;
      t.values = f.to_float(name);
      if (edit(t)) tensors.push_back(std::move(t));
    }
  }
  io::write_safetensors(path, tensors);
}

void edit_config(const test::ModelCopy& copy, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = test::read_json(copy.path("config.json"));
  edit(j);
  std::ofstream(copy.path("config.json")) << j.dump(2);
}

TEST(LoadErrors, CopyLoadsUndamaged) {
  // The damage below is all that makes the copies fail.
  const test::ModelCopy copy("qwen2-tiny");
  rewrite(copy.path("model.safetensors"), [](io::TensorToWrite&) { return true; });
  EXPECT_NO_THROW(Model::load(copy.dir()));
}

TEST(LoadErrors, MissingTensor) {
  const test::ModelCopy copy("llama3-tiny");
  rewrite(copy.path("model.safetensors"),
          [](io::TensorToWrite& t) { return t.name != "model.layers.1.mlp.up_proj.weight"; });
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find(copy.dir()), std::string::npos) << m;
  EXPECT_NE(
      m.find("tensor 'model.layers.1.mlp.up_proj.weight' is missing (expected shape [512, 256])"),
      std::string::npos)
      << m;
}

TEST(LoadErrors, MissingBiasOfQwen2) {
  const test::ModelCopy copy("qwen2-tiny");
  rewrite(copy.path("model.safetensors"),
          [](io::TensorToWrite& t) { return t.name != "model.layers.0.self_attn.k_proj.bias"; });
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find("'model.layers.0.self_attn.k_proj.bias' is missing"), std::string::npos) << m;
}

TEST(LoadErrors, MissingLmHeadOfUntiedModel) {
  const test::ModelCopy copy("mistral-tiny");
  rewrite(copy.path("model.safetensors"),
          [](io::TensorToWrite& t) { return t.name != "lm_head.weight"; });
  EXPECT_NE(load_error(copy.dir()).find("'lm_head.weight' is missing"), std::string::npos);
}

TEST(LoadErrors, WrongShape) {
  const test::ModelCopy copy("llama3-tiny");
  rewrite(copy.path("model.safetensors"), [](io::TensorToWrite& t) {
    if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {256, 128};  // transposed
    return true;
  });
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find("tensor 'model.layers.0.self_attn.k_proj.weight' has shape [256, 128], expected "
                   "[128, 256]"),
            std::string::npos)
      << m;
}

TEST(LoadErrors, ConfigFieldOfWrongType) {
  const test::ModelCopy copy("llama2-tiny");
  edit_config(copy, [](nlohmann::json& j) { j["num_hidden_layers"] = "2"; });
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find(copy.path("config.json") + ": field 'num_hidden_layers' must be an integer"),
            std::string::npos)
      << m;
}

TEST(LoadErrors, ConfigDisagreesWithWeights) {
  // A config that asks for more layers than the weights hold names the first missing one.
  const test::ModelCopy copy("llama2-tiny");
  edit_config(copy, [](nlohmann::json& j) { j["num_hidden_layers"] = 3; });
  EXPECT_NE(load_error(copy.dir()).find("'model.layers.2.input_layernorm.weight' is missing"),
            std::string::npos);
}

TEST(LoadErrors, UnknownArchitecture) {
  const test::ModelCopy copy("qwen3-tiny");
  edit_config(copy, [](nlohmann::json& j) { j["architectures"] = {"GPT2LMHeadModel"}; });
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find("field 'architectures'"), std::string::npos) << m;
  EXPECT_NE(m.find("GPT2LMHeadModel"), std::string::npos) << m;
}

TEST(LoadErrors, TruncatedShard) {
  const test::ModelCopy copy("llama-f32-sharded");
  const std::string shard = copy.path("model-00002-of-00002.safetensors");
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) / 2);
  const std::string m = load_error(copy.dir());
  EXPECT_NE(m.find("model-00002-of-00002.safetensors"), std::string::npos) << m;
}

TEST(LoadErrors, MissingShardAndMissingFolder) {
  const test::ModelCopy copy("llama-f32-sharded");
  std::filesystem::remove(copy.path("model-00001-of-00002.safetensors"));
  EXPECT_NE(load_error(copy.dir()).find("model-00001-of-00002.safetensors"), std::string::npos);
  EXPECT_NE(load_error("/nonexistent-zc-model").find("/nonexistent-zc-model/config.json"),
            std::string::npos);
}

}  // namespace
}  // namespace zc::model
