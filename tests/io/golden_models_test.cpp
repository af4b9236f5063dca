// The real golden models in ZC_TESTDATA_DIR/models (made by PyTorch/transformers):
// every one opens through WeightStore (the sharded one through its index), has the
// tensor names and shapes its config.json implies, and every tensor's values equal
// an independent decode of the raw file bytes done in this test.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace zc::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::bf16_value;
using testing::half_value;
using testing::read_bytes;

const fs::path kModels = fs::path(ZC_TESTDATA_DIR) / "models";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kModels)) {
    if (fs::exists(e.path() / "config.json")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GoldenModels, AllSixArePresent) {
  EXPECT_EQ(model_names(), (std::vector<std::string>{"llama-f32-sharded", "llama2-tiny",
                                                     "llama3-tiny", "mistral-tiny", "qwen2-tiny",
                                                     "qwen3-tiny"}));
}

class GoldenModel : public ::testing::TestWithParam<std::string> {};

// Names and shapes implied by config.json (HF Llama/Mistral/Qwen2/Qwen3 layouts).
std::map<std::string, std::vector<int64_t>> expected_shapes(const json& cfg) {
  const int64_t hidden = cfg["hidden_size"], inter = cfg["intermediate_size"];
  const int64_t vocab = cfg["vocab_size"], heads = cfg["num_attention_heads"];
  const int64_t kv_heads = cfg["num_key_value_heads"], layers = cfg["num_hidden_layers"];
  const int64_t head_dim =
      cfg.contains("head_dim") && !cfg["head_dim"].is_null() ? cfg["head_dim"].get<int64_t>()
                                                              : hidden / heads;
  const std::string type = cfg["model_type"];
  std::map<std::string, std::vector<int64_t>> m;
  m["model.embed_tokens.weight"] = {vocab, hidden};
  m["model.norm.weight"] = {hidden};
  if (!cfg["tie_word_embeddings"].get<bool>()) m["lm_head.weight"] = {vocab, hidden};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    m[p + "input_layernorm.weight"] = {hidden};
    m[p + "post_attention_layernorm.weight"] = {hidden};
    m[p + "self_attn.q_proj.weight"] = {heads * head_dim, hidden};
    m[p + "self_attn.k_proj.weight"] = {kv_heads * head_dim, hidden};
    m[p + "self_attn.v_proj.weight"] = {kv_heads * head_dim, hidden};
    m[p + "self_attn.o_proj.weight"] = {hidden, heads * head_dim};
    m[p + "mlp.gate_proj.weight"] = {inter, hidden};
    m[p + "mlp.up_proj.weight"] = {inter, hidden};
    m[p + "mlp.down_proj.weight"] = {hidden, inter};
    if (type == "qwen2") {
      m[p + "self_attn.q_proj.bias"] = {heads * head_dim};
      m[p + "self_attn.k_proj.bias"] = {kv_heads * head_dim};
      m[p + "self_attn.v_proj.bias"] = {kv_heads * head_dim};
    }
    if (type == "qwen3") {
      m[p + "self_attn.q_norm.weight"] = {head_dim};
      m[p + "self_attn.k_norm.weight"] = {head_dim};
    }
  }
  return m;
}

// Decodes every tensor of a safetensors file from its raw bytes, independently of
// SafetensorsFile: name -> values in double.
std::map<std::string, std::vector<double>> decode_raw(const std::string& path) {
  const std::vector<uint8_t> raw = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | raw.at(size_t(i));
  const json header = json::parse(raw.begin() + 8, raw.begin() + 8 + long(n));
  std::map<std::string, std::vector<double>> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string dt = (*it)["dtype"];
    const size_t b = (*it)["data_offsets"][0], e = (*it)["data_offsets"][1];
    const uint8_t* p = raw.data() + 8 + n + b;
    std::vector<double>& v = out[it.key()];
    if (dt == "F32") {
      for (size_t i = 0; i < (e - b) / 4; ++i) {
        uint32_t u = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 |
                     uint32_t(p[4 * i + 2]) << 16 | uint32_t(p[4 * i + 3]) << 24;
        float f;
        std::memcpy(&f, &u, 4);
        v.push_back(f);
      }
    } else {
      for (size_t i = 0; i < (e - b) / 2; ++i) {
        const uint16_t h = uint16_t(p[2 * i] | p[2 * i + 1] << 8);
        v.push_back(dt == "F16" ? half_value(h) : bf16_value(h));
      }
    }
  }
  return out;
}

TEST_P(GoldenModel, NamesShapesAndValues) {
  const fs::path dir = kModels / GetParam();
  const json cfg = read_json(dir / "config.json");
  const WeightStore ws(dir.string());

  const auto want = expected_shapes(cfg);
  std::vector<std::string> want_names;
  for (const auto& [name, shape] : want) want_names.push_back(name);
  EXPECT_EQ(ws.names(), want_names);

  const std::map<std::string, DType> dtypes = {
      {"float32", DType::F32}, {"float16", DType::F16}, {"bfloat16", DType::BF16}};
  const DType want_dtype = dtypes.at(cfg["torch_dtype"]);
  for (const auto& [name, shape] : want) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ws.has(name));
    EXPECT_EQ(ws.info(name).shape, shape);
    EXPECT_EQ(ws.info(name).dtype, want_dtype);
  }
  // The embedding table: [vocab_size, hidden_size], as the model loader relies on.
  EXPECT_EQ(ws.info("model.embed_tokens.weight").shape,
            (std::vector<int64_t>{cfg["vocab_size"].get<int64_t>(), cfg["hidden_size"].get<int64_t>()}));

  // Values: every tensor against the raw decode of its own file.
  std::set<std::string> files;
  for (const std::string& name : ws.names()) files.insert(ws.file_of(name).path());
  size_t checked = 0;
  for (const std::string& file : files) {
    for (const auto& [name, ref] : decode_raw(file)) {
      SCOPED_TRACE(name);
      ASSERT_EQ(ws.file_of(name).path(), file);
      const std::vector<float> got = ws.to_float(name);
      ASSERT_EQ(got.size(), ref.size());
      size_t mismatches = 0;
      for (size_t i = 0; i < got.size(); ++i) mismatches += double(got[i]) != ref[i];
      EXPECT_EQ(mismatches, 0u);
      ++checked;
    }
  }
  EXPECT_EQ(checked, want.size());
}

INSTANTIATE_TEST_SUITE_P(All, GoldenModel, ::testing::ValuesIn(model_names()),
                         [](const auto& p) {
                           std::string s = p.param;
                           for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return s;
                         });

TEST(GoldenModels, ShardedIndexPlacesEachTensor) {
  const fs::path dir = kModels / "llama-f32-sharded";
  const WeightStore ws(dir.string());
  const json index = read_json(dir / "model.safetensors.index.json");
  uint64_t total = 0;
  std::set<std::string> shards;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    EXPECT_EQ(ws.file_of(it.key()).path(), (dir / it->get<std::string>()).string()) << it.key();
    total += ws.info(it.key()).end - ws.info(it.key()).begin;
    shards.insert(it->get<std::string>());
  }
  EXPECT_EQ(shards.size(), 2u);
  EXPECT_EQ(total, index["metadata"]["total_size"].get<uint64_t>());
  EXPECT_EQ(ws.file_of("model.norm.weight").metadata().at("format"), "pt");
}

}  // namespace
}  // namespace zc::io
