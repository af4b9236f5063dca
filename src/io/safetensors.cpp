// Reading safetensors files: mmap the file, validate the header completely, hand out
// tensors as raw bytes or converted values. Format: https://huggingface.co/docs/safetensors
// (8-byte little-endian header length N, N bytes of JSON, then the data section).
// Every check names the file and the tensor/field, because a malformed download or a
// half-written shard otherwise shows up much later as garbage logits.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "io/safetensors_limits.h"

namespace zc::io {

// safetensors is little-endian on disk; elements are copied out with memcpy, which
// is only a correct decode on a little-endian host.
static_assert(std::endian::native == std::endian::little, "zipcache assumes a little-endian host");

std::string dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  fail("internal error: unknown DType {}", static_cast<int>(t));
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  fail("internal error: unknown DType {}", static_cast<int>(t));
}

size_t TensorInfo::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);  // validated at load: no overflow
  return n;
}

namespace {

using nlohmann::json;

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I32", DType::I32}, {"I64", DType::I64}, {"U8", DType::U8}};
  for (const auto& [name, t] : kNames) {
    if (s == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

// A JSON value as a non-negative integer that fits in uint64; false otherwise.
bool as_count(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// Parses one "name": {dtype, shape, data_offsets} entry; `data_size` bounds the offsets.
TensorInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                       size_t data_size) {
  if (!e.is_object()) fail("{}: tensor '{}': entry is not a JSON object", path, name);
  TensorInfo t;
  t.name = name;

  const auto dt = e.find("dtype");
  if (dt == e.end()) fail("{}: tensor '{}': missing field 'dtype'", path, name);
  if (!dt->is_string()) fail("{}: tensor '{}': field 'dtype' is not a string", path, name);
  if (!parse_dtype(dt->get<std::string>(), &t.dtype)) {
    fail("{}: unsupported dtype {} for tensor '{}' (supported: F32, F16, BF16, I32, I64, U8)",
         path, dt->get<std::string>(), name);
  }

  const auto sh = e.find("shape");
  if (sh == e.end()) fail("{}: tensor '{}': missing field 'shape'", path, name);
  if (!sh->is_array()) fail("{}: tensor '{}': field 'shape' is not an array", path, name);
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < sh->size(); ++i) {
    const json& d = (*sh)[i];
    if (!d.is_number_integer()) {
      fail("{}: tensor '{}': shape[{}] is not an integer ({})", path, name, i, d.dump());
    }
    if (!d.is_number_unsigned() && d.get<int64_t>() < 0) {
      fail("{}: tensor '{}': negative dimension shape[{}] = {}", path, name, i, d.get<int64_t>());
    }
    uint64_t n = 0;
    as_count(d, &n);
    if (n > static_cast<uint64_t>(INT64_MAX)) {
      fail("{}: tensor '{}': dimension shape[{}] = {} is too large", path, name, i, n);
    }
    t.shape.push_back(static_cast<int64_t>(n));
    overflow = overflow || __builtin_mul_overflow(numel, n, &numel);
  }

  const auto off = e.find("data_offsets");
  if (off == e.end()) fail("{}: tensor '{}': missing field 'data_offsets'", path, name);
  if (!off->is_array() || off->size() != 2) {
    fail("{}: tensor '{}': field 'data_offsets' is not an array of two integers", path, name);
  }
  uint64_t begin = 0, end = 0;
  if (!as_count((*off)[0], &begin) || !as_count((*off)[1], &end)) {
    fail("{}: tensor '{}': data_offsets {} are not two non-negative integers", path, name,
         off->dump());
  }
  if (begin > end) {
    fail("{}: tensor '{}': data_offsets begin {} is after end {}", path, name, begin, end);
  }
  if (end > data_size) {
    fail("{}: tensor '{}': data_offsets end {} is out of range (data section has {} bytes)", path,
         name, end, data_size);
  }
  uint64_t bytes = 0;
  if (overflow || __builtin_mul_overflow(numel, dtype_size(t.dtype), &bytes)) {
    fail("{}: tensor '{}': shape {} has too many elements", path, name, sh->dump());
  }
  if (end - begin != bytes) {
    fail("{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", path,
         name, sh->dump(), dtype_name(t.dtype), bytes, begin, end, end - begin);
  }
  t.begin = static_cast<size_t>(begin);
  t.end = static_cast<size_t>(end);
  return t;
}

// Little-endian element decode from possibly unaligned bytes (memcpy: no UB).
template <typename T>
T load(const uint8_t* p, size_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail("{}: file is {} bytes, shorter than the 8-byte header length", path, size);
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) fail("{}: cannot mmap: {}", path, std::strerror(map_err));
  map_ = static_cast<const uint8_t*>(m);
  map_size_ = size;

  // The destructor does not run when the constructor throws: unmap here.
  try {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
    if (n > kMaxHeaderBytes) {
      fail("{}: header length {} is absurd (limit {} bytes); not a safetensors file?", path, n,
           kMaxHeaderBytes);
    }
    if (n > size - 8) {
      fail("{}: header length {} is larger than the file ({} bytes after the length field)", path,
           n, size - 8);
    }
    data_ = map_ + 8 + n;
    const size_t data_size = size - 8 - static_cast<size_t>(n);

    json header;
    try {
      header = json::parse(map_ + 8, map_ + 8 + n);
    } catch (const json::exception& e) {
      fail("{}: header is not valid JSON: {}", path, e.what());
    }
    if (!header.is_object()) fail("{}: header JSON is not an object", path);

    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it->is_object()) fail("{}: __metadata__ is not a JSON object", path);
        for (auto m_it = it->begin(); m_it != it->end(); ++m_it) {
          if (!m_it->is_string()) {
            fail("{}: __metadata__ value for key '{}' is not a string", path, m_it.key());
          }
          metadata_[m_it.key()] = m_it->get<std::string>();
        }
        continue;
      }
      tensors_[it.key()] = parse_entry(path, it.key(), *it, data_size);
    }

    // No two tensors may share bytes (empty tensors own no bytes).
    std::vector<const TensorInfo*> order;
    for (const auto& [name, t] : tensors_) {
      if (t.end > t.begin) order.push_back(&t);
    }
    std::sort(order.begin(), order.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < order.size(); ++i) {
      if (order[i]->begin < order[i - 1]->end) {
        fail("{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", path, order[i - 1]->name,
             order[i - 1]->begin, order[i - 1]->end, order[i]->name, order[i]->begin,
             order[i]->end);
      }
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("{}: no tensor named '{}'", path_, name);
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, t] : tensors_) out.push_back(name);  // std::map: already sorted
  return out;
}

const uint8_t* SafetensorsFile::data(const std::string& name) const {
  return data_ + info(name).begin;
}

std::vector<float> SafetensorsFile::to_float(const std::string& name) const {
  const TensorInfo& t = info(name);
  const uint8_t* p = data_ + t.begin;
  const size_t n = t.numel();
  std::vector<float> out(n);
  switch (t.dtype) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) out[i] = load<float>(p, i);
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = half_to_float(load<uint16_t>(p, i));
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(load<uint16_t>(p, i));
      break;
    default:
      fail("{}: tensor '{}' has dtype {}; expected a float dtype (F32, F16 or BF16)", path_, name,
           dtype_name(t.dtype));
  }
  // A NaN or Inf weight poisons every later activation: refuse it at load time.
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      fail("{}: tensor '{}' element {} is {}", path_, name, i,
           std::isnan(out[i]) ? "NaN" : "infinite");
    }
  }
  return out;
}

std::vector<int64_t> SafetensorsFile::to_int(const std::string& name) const {
  const TensorInfo& t = info(name);
  const uint8_t* p = data_ + t.begin;
  const size_t n = t.numel();
  std::vector<int64_t> out(n);
  switch (t.dtype) {
    case DType::I32:
      for (size_t i = 0; i < n; ++i) out[i] = load<int32_t>(p, i);
      break;
    case DType::I64:
      for (size_t i = 0; i < n; ++i) out[i] = load<int64_t>(p, i);
      break;
    case DType::U8:
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    default:
      fail("{}: tensor '{}' has dtype {}; expected an integer dtype (I32, I64 or U8)", path_,
           name, dtype_name(t.dtype));
  }
  return out;
}

}  // namespace zc::io
