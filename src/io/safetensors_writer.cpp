// Writing safetensors files in the layout the reference writer produces: JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded with spaces to a
// multiple of 8 bytes, then the tensors back to back. Tensors are ordered by element
// size (largest first) then name, as the reference does, so every tensor starts
// aligned to its element size. The file appears atomically: "<path>.tmp", then rename.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "io/safetensors.h"
#include "io/safetensors_limits.h"

namespace zc::io {

namespace {

using nlohmann::json;

size_t checked_numel(const std::string& path, const TensorToWrite& t) {
  uint64_t n = 1;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] < 0) {
      fail("{}: tensor '{}': negative dimension shape[{}] = {}", path, t.name, i, t.shape[i]);
    }
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(t.shape[i]), &n)) {
      fail("{}: tensor '{}': shape has too many elements", path, t.name);
    }
  }
  uint64_t bytes = 0;  // the byte size must fit too, for the data_offsets
  if (__builtin_mul_overflow(n, dtype_size(t.dtype), &bytes)) {
    fail("{}: tensor '{}': shape has too many elements", path, t.name);
  }
  return static_cast<size_t>(n);
}

// Checks the values of one tensor against its dtype before anything is written.
void validate(const std::string& path, const TensorToWrite& t) {
  if (t.name.empty()) fail("{}: a tensor has an empty name", path);
  if (t.name == "__metadata__") fail("{}: '__metadata__' is reserved, not a tensor name", path);
  const size_t n = checked_numel(path, t);
  const bool is_float = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
  const size_t given = is_float ? t.values.size() : t.ints.size();
  const size_t other = is_float ? t.ints.size() : t.values.size();
  if (given != n || other != 0) {
    fail("{}: tensor '{}': shape needs {} elements of {}, got {} {} (and {} {})", path, t.name, n,
         dtype_name(t.dtype), given, is_float ? "values" : "ints", other,
         is_float ? "ints" : "values");
  }
  for (size_t i = 0; i < t.values.size(); ++i) {
    const float v = t.values[i];
    // The reader refuses non-finite weights; a value that overflows the narrow dtype
    // would come back as Inf, so refuse that here too.
    const float stored = t.dtype == DType::F16    ? round_to_half(v)
                         : t.dtype == DType::BF16 ? bf16_to_float(float_to_bf16(v))
                                                  : v;
    if (!std::isfinite(stored)) {
      fail("{}: tensor '{}' element {} ({}) is not finite as {}", path, t.name, i, v,
           dtype_name(t.dtype));
    }
  }
  for (size_t i = 0; i < t.ints.size(); ++i) {
    const int64_t v = t.ints[i];
    const bool fits = t.dtype == DType::I64 ||
                      (t.dtype == DType::I32 && v >= INT32_MIN && v <= INT32_MAX) ||
                      (t.dtype == DType::U8 && v >= 0 && v <= 255);
    if (!fits) {
      fail("{}: tensor '{}' element {} = {} does not fit in {}", path, t.name, i, v,
           dtype_name(t.dtype));
    }
  }
}

// Little-endian bytes of one tensor.
std::vector<uint8_t> encode(const TensorToWrite& t) {
  const size_t esize = dtype_size(t.dtype);
  const size_t n = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16
                       ? t.values.size()
                       : t.ints.size();
  std::vector<uint8_t> out(n * esize);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = out.data() + i * esize;
    switch (t.dtype) {
      case DType::F32: std::memcpy(p, &t.values[i], 4); break;
      case DType::F16: {
        const uint16_t h = float_to_half(t.values[i]);
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::BF16: {
        const uint16_t b = float_to_bf16(t.values[i]);
        std::memcpy(p, &b, 2);
        break;
      }
      case DType::I32: {
        const int32_t v = static_cast<int32_t>(t.ints[i]);
        std::memcpy(p, &v, 4);
        break;
      }
      case DType::I64: std::memcpy(p, &t.ints[i], 8); break;
      case DType::U8: *p = static_cast<uint8_t>(t.ints[i]); break;
    }
  }
  return out;
}

class TmpFile {
 public:
  explicit TmpFile(const std::string& final_path) : final_(final_path), tmp_(final_path + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (f_ == nullptr) fail("{}: cannot create {}: {}", final_, tmp_, std::strerror(errno));
  }
  ~TmpFile() {
    if (f_ != nullptr) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());  // a failed write leaves nothing behind
  }
  TmpFile(const TmpFile&) = delete;
  TmpFile& operator=(const TmpFile&) = delete;

  void write(const void* p, size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f_) != n) {
      fail("{}: write to {} failed: {}", final_, tmp_, std::strerror(errno));
    }
  }
  void commit() {
    // Flush and sync before the rename so the new name never points at a partial file.
    const bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
    const int err = errno;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || !closed) fail("{}: writing {} failed: {}", final_, tmp_, std::strerror(err));
    std::error_code ec;
    std::filesystem::rename(tmp_, final_, ec);
    if (ec) fail("{}: cannot rename {} into place: {}", final_, tmp_, ec.message());
    committed_ = true;
  }

 private:
  std::string final_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  for (const TensorToWrite& t : tensors) {
    validate(path, t);
    if (!seen.insert(t.name).second) fail("{}: tensor '{}' appears twice", path, t.name);
  }

  std::vector<const TensorToWrite*> order;
  for (const TensorToWrite& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    const uint64_t bytes = checked_numel(path, *t) * dtype_size(t->dtype);
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((kHeaderAlign - text.size() % kHeaderAlign) % kHeaderAlign, ' ');
  if (text.size() > kMaxHeaderBytes) {
    fail("{}: header would be {} bytes, over the {} byte limit readers accept", path, text.size(),
         kMaxHeaderBytes);
  }

  uint8_t len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i, n >>= 8) len[i] = static_cast<uint8_t>(n & 0xff);

  TmpFile out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (const TensorToWrite* t : order) {
    const std::vector<uint8_t> bytes = encode(*t);
    out.write(bytes.data(), bytes.size());
  }
  out.commit();
}

}  // namespace zc::io
