// Loading tokenizer.json, tokenizer_config.json and generation_config.json.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace zc::tok {

using nlohmann::json;

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) zc::fail("{}: cannot open the file", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return json::parse(buffer.str());
  } catch (const json::exception& e) {
    zc::fail("{}: not valid JSON ({})", path, e.what());
  }
}

AddedToken parse_added_token(const json& j, const std::string& where, size_t index) {
  const std::string field = fmt::format("added_tokens[{}]", index);
  if (!j.is_object()) zc::fail("{}: {} must be an object", where, field);
  AddedToken t;
  const auto id = j.find("id");
  if (id == j.end() || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() > INT32_MAX) {
    zc::fail("{}: {}.id must be a non-negative integer", where, field);
  }
  t.id = static_cast<int32_t>(id->get<int64_t>());
  t.content = get_string(j, "content", where, field);
  t.special = get_bool(j, "special", false, where, field);
  t.single_word = get_bool(j, "single_word", false, where, field);
  t.lstrip = get_bool(j, "lstrip", false, where, field);
  t.rstrip = get_bool(j, "rstrip", false, where, field);
  t.normalized = get_bool(j, "normalized", !t.special, where, field);
  return t;
}

// Whether the decoder (or a Sequence inside it) has a component of this type.
bool decoder_has(const json& j, const std::string& type) {
  if (!j.is_object()) return false;
  if (j.value("type", "") == type) return true;
  const auto parts = j.find("decoders");
  if (parts == j.end() || !parts->is_array()) return false;
  for (const json& part : *parts) {
    if (decoder_has(part, type)) return true;
  }
  return false;
}

const json& field_or_null(const json& root, const char* key) {
  static const json null_json;
  const auto it = root.find(key);
  return it == root.end() ? null_json : *it;
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(const std::string& path) {
  const json root = read_json(path);
  if (!root.is_object()) zc::fail("{}: the top level must be a JSON object", path);
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->path = path;

  const auto model = root.find("model");
  if (model == root.end() || !model->is_object()) zc::fail("{}: no \"model\" object", path);
  std::string type;
  const auto type_it = model->find("type");
  if (type_it != model->end() && type_it->is_string()) {
    type = type_it->get<std::string>();
  } else if (model->contains("merges")) {
    type = "BPE";  // files of early HF versions leave the tag out
  } else {
    zc::fail("{}: model has no \"type\"", path);
  }
  if (type != "BPE") zc::fail("{}: model type '{}' is not supported (only BPE)", path, type);
  impl->model = std::make_unique<BpeModel>(*model, path);

  impl->normalizer = make_normalizer(field_or_null(root, "normalizer"), path);
  impl->pre_tokenizer = make_pre_tokenizer(field_or_null(root, "pre_tokenizer"), path);
  impl->post_processor = make_post_processor(field_or_null(root, "post_processor"), path);
  impl->decoder = make_decoder(field_or_null(root, "decoder"), path);
  impl->byte_fallback_decoder = decoder_has(field_or_null(root, "decoder"), "ByteFallback");

  const json& added = field_or_null(root, "added_tokens");
  if (!added.is_null() && !added.is_array()) zc::fail("{}: added_tokens must be an array", path);
  for (size_t i = 0; !added.is_null() && i < added.size(); ++i) {
    AddedToken t = parse_added_token(added[i], path, i);
    if (t.content.empty()) continue;
    impl->added_by_id[t.id] = impl->added.size();
    impl->added_by_content[t.content] = t.id;
    impl->added.push_back(std::move(t));
  }
  // HF builds its matchers from the special tokens first, then the others.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < impl->added.size(); ++i) {
      const AddedToken& t = impl->added[i];
      if (t.special != (pass == 0)) continue;
      if (!t.normalized) {
        impl->raw_matcher.add(t.content, static_cast<int>(i));
      } else {
        std::string pattern = t.content;  // matched in its normalized form
        if (impl->normalizer) impl->normalizer->normalize(pattern);
        impl->normalized_matcher.add(pattern, static_cast<int>(i));
      }
    }
  }

  int32_t max_id = impl->model->max_id();
  for (const AddedToken& t : impl->added) max_id = std::max(max_id, t.id);
  impl->vocab_size = max_id + 1;
  if (impl->post_processor) impl->bos = impl->post_processor->leading_special();
  return impl;
}

namespace {

// A token named in tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
std::string config_token(const json& config, const char* key, const std::string& path) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  zc::fail("{}: {} must be a token string or an object with \"content\"", path, key);
}

int32_t config_token_id(const Tokenizer::Impl& impl, const std::string& token, const char* key,
                        const std::string& path) {
  const auto added = impl.added_by_content.find(token);
  if (added != impl.added_by_content.end()) return added->second;
  const auto id = impl.model->token_to_id(token);
  if (!id) zc::fail("{}: {} '{}' is not a token of {}", path, key, token, impl.path);
  return *id;
}

void add_eos(Tokenizer::Impl& impl, int64_t id, const std::string& path) {
  if (id < 0 || id >= impl.vocab_size) zc::fail("{}: eos_token_id {} is outside the vocabulary", path, id);
  if (std::find(impl.eos.begin(), impl.eos.end(), id) == impl.eos.end()) impl.eos.push_back(static_cast<int32_t>(id));
}

}  // namespace

void load_special_config(Tokenizer::Impl& impl, const std::string& config_path, const std::string& generation_path) {
  if (!config_path.empty()) {
    const json config = read_json(config_path);
    if (!config.is_object()) zc::fail("{}: the top level must be a JSON object", config_path);
    const std::string bos = config_token(config, "bos_token", config_path);
    if (!bos.empty()) impl.bos = config_token_id(impl, bos, "bos_token", config_path);
    const std::string eos = config_token(config, "eos_token", config_path);
    if (!eos.empty()) add_eos(impl, config_token_id(impl, eos, "eos_token", config_path), config_path);
    impl.add_bos = get_bool(config, "add_bos_token", false, config_path, "tokenizer_config");
    impl.add_eos = get_bool(config, "add_eos_token", false, config_path, "tokenizer_config");
    if (impl.add_bos && impl.bos < 0) zc::fail("{}: add_bos_token is true but there is no bos_token", config_path);
    if (impl.add_eos && impl.eos.empty()) zc::fail("{}: add_eos_token is true but there is no eos_token", config_path);
  }
  if (!generation_path.empty()) {
    const json gen = read_json(generation_path);
    if (!gen.is_object()) zc::fail("{}: the top level must be a JSON object", generation_path);
    const auto eos = gen.find("eos_token_id");
    if (eos != gen.end() && eos->is_number_integer()) {
      add_eos(impl, eos->get<int64_t>(), generation_path);
    } else if (eos != gen.end() && eos->is_array()) {
      for (const json& id : *eos) {
        if (!id.is_number_integer()) zc::fail("{}: eos_token_id must hold integers", generation_path);
        add_eos(impl, id.get<int64_t>(), generation_path);
      }
    } else if (eos != gen.end() && !eos->is_null()) {
      zc::fail("{}: eos_token_id must be an integer or a list of integers", generation_path);
    }
    const auto bos = gen.find("bos_token_id");
    if (impl.bos < 0 && bos != gen.end() && bos->is_number_integer()) {
      const int64_t id = bos->get<int64_t>();
      if (id < 0 || id >= impl.vocab_size) {
        zc::fail("{}: bos_token_id {} is outside the vocabulary", generation_path, id);
      }
      impl.bos = static_cast<int32_t>(id);
    }
  }
}

}  // namespace zc::tok
