// config.json parsing: every golden model's config, the variants real checkpoints
// use (eos lists, linear/llama3/rope_parameters, nulls for defaults) and errors that
// name the file and the field.
#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/testdata.h"

namespace zc::model {
namespace {

using nlohmann::json;

ModelConfig golden(const std::string& name) { return load_config(test::models_dir() + "/" + name); }

TEST(Config, Llama3Tiny) {
  const ModelConfig c = golden("llama3-tiny");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.intermediate_size, 512);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias || c.o_bias || c.mlp_bias || c.qk_norm);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.sliding_window, 0);
}

TEST(Config, Llama2AndShardedF32) {
  const ModelConfig c = golden("llama2-tiny");
  EXPECT_EQ(c.n_kv_heads, 4);                 // MHA
  EXPECT_EQ(c.rope.type, RopeType::Default);  // "rope_scaling": null
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);    // absent: the default
  EXPECT_EQ(c.torch_dtype, "float16");
  const ModelConfig f = golden("llama-f32-sharded");
  EXPECT_EQ(f.hidden_size, 128);
  EXPECT_EQ(f.n_heads, 2);
  EXPECT_EQ(f.n_kv_heads, 1);
  EXPECT_EQ(f.vocab_size, 300);
  EXPECT_EQ(f.torch_dtype, "float32");
}

TEST(Config, Mistral) {
  const ModelConfig c = golden("mistral-tiny");
  EXPECT_EQ(c.arch, Arch::Mistral);
  EXPECT_EQ(c.n_layers, 3);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.sliding_window, 4096);
}

TEST(Config, Qwen2) {
  const ModelConfig c = golden("qwen2-tiny");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window false
  EXPECT_EQ(c.bos_token_id, 0);
}

TEST(Config, Qwen3) {
  const ModelConfig c = golden("qwen3-tiny");
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_EQ(c.head_dim, 128);  // not hidden_size / heads = 64
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);  // written as the integer 1000000
}

json base() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10,
    "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "hidden_act": "silu"})");
}

// The message of the zc::Error that parsing j throws.
std::string error_of(const json& j) {
  try {
    parse_config(j, "m/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << j.dump();
  return "";
}

TEST(Config, DefaultsAndVariants) {
  json j = base();
  j["num_key_value_heads"] = nullptr;
  j["eos_token_id"] = {128001, 128008, 128009};
  j["bos_token_id"] = nullptr;
  ModelConfig c = parse_config(j, "x");
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));

  j = base();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  c = parse_config(j, "x");
  EXPECT_EQ(c.rope.type, RopeType::Linear);
  EXPECT_DOUBLE_EQ(c.rope.factor, 2.0);

  // transformers 5 writes rope_theta inside rope_parameters, and "dtype".
  j = base();
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  j["dtype"] = "bfloat16";
  c = parse_config(j, "x");
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.torch_dtype, "bfloat16");

  j = base();
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  c = parse_config(j, "x");
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.mlp_bias);

  j = base();
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse_config(j, "x").sliding_window, 0);
}

TEST(Config, ErrorsNameTheField) {
  json j = base();
  j["hidden_size"] = "64";
  std::string m = error_of(j);
  EXPECT_NE(m.find("m/config.json: field 'hidden_size' must be an integer"), std::string::npos)
      << m;

  j = base();
  j.erase("num_hidden_layers");
  m = error_of(j);
  EXPECT_NE(m.find("field 'num_hidden_layers' is missing"), std::string::npos) << m;

  j = base();
  j["architectures"] = {"GPT2LMHeadModel"};
  m = error_of(j);
  EXPECT_NE(m.find("field 'architectures'"), std::string::npos) << m;
  EXPECT_NE(m.find("GPT2LMHeadModel"), std::string::npos) << m;

  j = base();
  j["architectures"] = "LlamaForCausalLM";  // a string, not a list
  EXPECT_NE(error_of(j).find("field 'architectures'"), std::string::npos);

  j = base();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of(j).find("field 'hidden_act'"), std::string::npos);

  j = base();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("field 'num_key_value_heads'"), std::string::npos);

  j = base();
  j["num_attention_heads"] = 0;
  EXPECT_NE(error_of(j).find("field 'num_attention_heads'"), std::string::npos);

  j = base();
  j["rms_norm_eps"] = "1e-5";
  EXPECT_NE(error_of(j).find("field 'rms_norm_eps' must be a number"), std::string::npos);

  j = base();
  j["tie_word_embeddings"] = 1;
  EXPECT_NE(error_of(j).find("field 'tie_word_embeddings'"), std::string::npos);

  j = base();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  m = error_of(j);
  EXPECT_NE(m.find("field 'rope_scaling.rope_type'"), std::string::npos) << m;

  j = base();
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}};
  m = error_of(j);
  EXPECT_NE(m.find("field 'rope_scaling.original_max_position_embeddings' is missing"),
            std::string::npos)
      << m;

  j = base();
  j["eos_token_id"] = {1, "2"};
  EXPECT_NE(error_of(j).find("field 'eos_token_id'"), std::string::npos);

  j = base();
  j["hidden_size"] = 66;  // not a multiple of 4 heads, no head_dim
  EXPECT_NE(error_of(j).find("field 'hidden_size'"), std::string::npos);

  EXPECT_NE(error_of(json::array()).find("m/config.json"), std::string::npos);
}

TEST(Config, FileErrors) {
  try {
    load_config("/nonexistent-zc-model");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-zc-model/config.json"), std::string::npos);
  }
  test::ModelCopy copy("llama2-tiny");
  {
    std::ofstream out(copy.path("config.json"));
    out << "{\"architectures\": [";
  }
  try {
    load_config(copy.dir());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: invalid JSON"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace zc::model
