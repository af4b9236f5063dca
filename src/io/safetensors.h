// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__"},
// then the data. Files are memory-mapped; every field is validated and errors name
// the file, the tensor and what was wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace zc::io {

enum class DType { F32, F16, BF16, I32, I64, U8 };
std::string dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte range inside the data section
  size_t numel() const;
};

// One memory-mapped safetensors file.
class SafetensorsFile {
 public:
  // Throws zc::Error ("<path>: <what>") for any malformed header or data range.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws if missing
  std::vector<std::string> names() const;                 // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Raw bytes of a tensor (inside the mapping).
  const uint8_t* data(const std::string& name) const;
  // Converted to fp32 (F32/F16/BF16). Throws if a value is NaN or infinite,
  // naming the tensor and the element index.
  std::vector<float> to_float(const std::string& name) const;
  // Integer tensors (I32/I64/U8) as int64.
  std::vector<int64_t> to_int(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights: a single model.safetensors, or shards listed by
// model.safetensors.index.json (weight_map name -> shard file). Checks that every
// shard exists and holds the tensors the index says it does.
class WeightStore {
 public:
  explicit WeightStore(const std::string& model_dir);
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws naming the tensor
  const SafetensorsFile& file_of(const std::string& name) const;
  std::vector<float> to_float(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index in files_
};

// A tensor to write: float data converted to dtype (F32, F16, BF16) or int data (I32, I64).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> values;   // for float dtypes
  std::vector<int64_t> ints;   // for integer dtypes
};
// Writes atomically (temporary file, then rename) so a failed write loses nothing.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace zc::io
