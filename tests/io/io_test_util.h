// Helpers for the io tests: a unique temporary directory, raw byte files built by
// hand (independent of write_safetensors), and error-message checks.
#pragma once
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace zc::io::testing {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "";
    path_ = std::filesystem::temp_directory_path() /
            ("zc_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + test);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Bytes of a safetensors file: 8-byte little-endian header length (or `length`
// when given), the header text as is, then `data`.
inline std::vector<uint8_t> safetensors_bytes(const std::string& header,
                                              const std::vector<uint8_t>& data,
                                              int64_t length = -1) {
  uint64_t n = length < 0 ? header.size() : uint64_t(length);
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i, n >>= 8) out.push_back(uint8_t(n & 0xff));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Little-endian bytes of values of type T.
template <typename T>
std::vector<uint8_t> le_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Exact value of IEEE binary16 / bfloat16 bits, from the format definitions (the
// independent reference for the library's conversions).
inline double half_value(uint16_t h) {
  const double sign = (h >> 15) ? -1.0 : 1.0;
  const int exp = (h >> 10) & 31, mant = h & 1023;
  return exp == 0 ? sign * std::ldexp(mant, -24) : sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
}
inline double bf16_value(uint16_t b) {
  const double sign = (b >> 15) ? -1.0 : 1.0;
  const int exp = (b >> 7) & 255, mant = b & 127;
  return exp == 0 ? sign * std::ldexp(mant, -133) : sign * std::ldexp(1.0 + mant / 128.0, exp - 127);
}

// Runs `fn`, expects a zc::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const zc::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
    }
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected zc::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected zc::Error containing '" << (parts.empty() ? "" : parts[0]) << "'";
}

}  // namespace zc::io::testing
