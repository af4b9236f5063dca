// A model directory's weights in the Hugging Face hub layout: either one
// model.safetensors, or shards listed by model.safetensors.index.json
// ({"weight_map": {tensor: shard file}}). The index is checked against the shards at
// load time so that a missing or stale shard is reported by name, not as a missing
// tensor somewhere inside the model loader.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"

namespace zc::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail("{}: read error", path.string());
  try {
    return json::parse(buf.str());
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

// A shard name must be a plain file inside the model directory: the index comes
// with a download and must not point the loader at arbitrary paths.
void check_shard_name(const fs::path& index, const std::string& tensor, const std::string& shard) {
  const fs::path p(shard);
  bool ok = !shard.empty() && p.is_relative();
  for (const auto& part : p) ok = ok && part != "..";
  if (!ok) {
    fail("{}: tensor '{}' maps to shard '{}', which is not a file name inside the model directory",
         index.string(), tensor, shard);
  }
}

}  // namespace

WeightStore::WeightStore(const std::string& model_dir) {
  const fs::path dir(model_dir);
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";

  if (!fs::exists(index)) {
    if (!fs::exists(single)) {
      fail("{}: no model.safetensors or model.safetensors.index.json", model_dir);
    }
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const std::string& name : files_[0]->names()) owner_[name] = 0;
    return;
  }

  const json doc = read_json_file(index);
  if (!doc.is_object()) fail("{}: not a JSON object", index.string());
  const auto wm = doc.find("weight_map");
  if (wm == doc.end()) fail("{}: missing field 'weight_map'", index.string());
  if (!wm->is_object()) fail("{}: field 'weight_map' is not an object", index.string());
  if (wm->empty()) fail("{}: weight_map lists no tensors", index.string());

  // Open each distinct shard once, in the order the index first names it.
  std::map<std::string, size_t> shard_index;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) {
      fail("{}: weight_map entry for tensor '{}' is not a string", index.string(), it.key());
    }
    const std::string shard = it->get<std::string>();
    check_shard_name(index, it.key(), shard);
    auto [pos, inserted] = shard_index.emplace(shard, files_.size());
    if (inserted) {
      const fs::path shard_path = dir / shard;
      if (!fs::exists(shard_path)) {
        fail("{}: shard file {} (listed for tensor '{}') does not exist", index.string(),
             shard_path.string(), it.key());
      }
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
    }
    const SafetensorsFile& file = *files_[pos->second];
    if (!file.has(it.key())) {
      fail("{}: tensor '{}' is listed in shard {}, but that shard does not contain it",
           index.string(), it.key(), shard);
    }
    owner_[it.key()] = pos->second;
  }
  // Tensors a shard holds but the index does not list are still reachable; the index
  // decides where a tensor lives only when it names it.
  for (size_t i = 0; i < files_.size(); ++i) {
    for (const std::string& name : files_[i]->names()) owner_.emplace(name, i);
  }
}

bool WeightStore::has(const std::string& name) const { return owner_.count(name) != 0; }

const SafetensorsFile& WeightStore::file_of(const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end()) {
    // files_ is never empty after construction; its parent is the model directory.
    fail("{}: model has no tensor named '{}'",
         fs::path(files_.front()->path()).parent_path().string(), name);
  }
  return *files_[it->second];
}

const TensorInfo& WeightStore::info(const std::string& name) const {
  return file_of(name).info(name);
}

std::vector<float> WeightStore::to_float(const std::string& name) const {
  return file_of(name).to_float(name);
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(owner_.size());
  for (const auto& [name, i] : owner_) out.push_back(name);
  return out;
}

}  // namespace zc::io
