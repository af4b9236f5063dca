// Malformed safetensors files, built byte by byte here (not with write_safetensors):
// each one must be refused with a one-line zc::Error naming the file, the tensor or
// field, and the problem.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace zc::io {
namespace {

using testing::expect_error;
using testing::le_bytes;
using testing::safetensors_bytes;
using testing::TempDir;
using testing::write_bytes;

// A valid file: "w" is F32 [2, 3] (24 bytes) at [0, 24), "b" is F32 [2] at [24, 32).
const std::string kGoodHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}})";
std::vector<uint8_t> good_data() { return le_bytes<float>({1, 2, 3, 4, 5, 6, -1, 0.5f}); }

// Writes a file with `header` and `data` and expects opening it to fail with `parts`.
void expect_open_error(const std::string& header, const std::vector<uint8_t>& data,
                       const std::vector<std::string>& parts) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, safetensors_bytes(header, data));
  std::vector<std::string> all = parts;
  all.push_back(path);
  expect_error([&] { SafetensorsFile f(path); }, all);
}

TEST(Malformed, GoodFileOpens) {
  // The base the malformed cases are cut from is itself valid.
  TempDir dir;
  const std::string path = dir.file("good.safetensors");
  write_bytes(path, safetensors_bytes(kGoodHeader, good_data()));
  SafetensorsFile f(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"b", "w"}));
  EXPECT_EQ(f.to_float("w"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.to_float("b"), (std::vector<float>{-1, 0.5f}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(Malformed, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("absent.safetensors");
  expect_error([&] { SafetensorsFile f(path); }, {path, "cannot open"});
}

TEST(Malformed, DirectoryInsteadOfFile) {
  TempDir dir;
  expect_error([&] { SafetensorsFile f(dir.path().string()); }, {"not a regular file"});
}

TEST(Malformed, EmptyFile) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  write_bytes(path, {});
  expect_error([&] { SafetensorsFile f(path); }, {path, "0 bytes", "shorter than"});
}

TEST(Malformed, ShorterThanLengthField) {
  TempDir dir;
  const std::string path = dir.file("short.safetensors");
  write_bytes(path, {1, 0, 0, 0, 0});
  expect_error([&] { SafetensorsFile f(path); }, {path, "5 bytes", "shorter than"});
}

TEST(Malformed, TruncatedInHeader) {
  // The length field says the full header, but the file stops halfway through it.
  TempDir dir;
  const std::string path = dir.file("cut_header.safetensors");
  std::vector<uint8_t> bytes = safetensors_bytes(kGoodHeader, good_data());
  bytes.resize(8 + kGoodHeader.size() / 2);
  write_bytes(path, bytes);
  expect_error([&] { SafetensorsFile f(path); },
               {path, "header length " + std::to_string(kGoodHeader.size()), "larger than the file"});
}

TEST(Malformed, TruncatedInData) {
  // The header is whole but the last tensor's bytes are cut off.
  TempDir dir;
  const std::string path = dir.file("cut_data.safetensors");
  std::vector<uint8_t> bytes = safetensors_bytes(kGoodHeader, good_data());
  bytes.resize(bytes.size() - 3);
  write_bytes(path, bytes);
  expect_error([&] { SafetensorsFile f(path); }, {path, "'b'", "out of range", "29 bytes"});
}

TEST(Malformed, HeaderLengthLargerThanFile) {
  TempDir dir;
  const std::string path = dir.file("long.safetensors");
  write_bytes(path, safetensors_bytes(kGoodHeader, good_data(), 5000));
  expect_error([&] { SafetensorsFile f(path); }, {path, "header length 5000", "larger than the file"});
}

TEST(Malformed, AbsurdHeaderLength) {
  // A length field of 2^63 (e.g. a text file): refused before anything is parsed.
  TempDir dir;
  const std::string path = dir.file("absurd.safetensors");
  write_bytes(path, safetensors_bytes("{}", {}, int64_t(1) << 62));
  expect_error([&] { SafetensorsFile f(path); }, {path, "absurd"});
  write_bytes(path, safetensors_bytes("{}", {}, 100'000'001));
  expect_error([&] { SafetensorsFile f(path); }, {path, "header length 100000001", "absurd"});
}

TEST(Malformed, InvalidJson) {
  expect_open_error(R"({"w":{"dtype":"F32",)", {}, {"not valid JSON"});
  expect_open_error("not json at all", {}, {"not valid JSON"});
  expect_open_error("", {}, {"not valid JSON"});
  // Trailing garbage after the object is not padding.
  expect_open_error(R"({} x)", {}, {"not valid JSON"});
}

TEST(Malformed, HeaderNotAnObject) {
  expect_open_error(R"([1,2,3])", {}, {"not an object"});
  expect_open_error(R"("text")", {}, {"not an object"});
}

TEST(Malformed, EntryFieldsMissingOrWrongType) {
  expect_open_error(R"({"w":[1,2]})", {}, {"'w'", "not a JSON object"});
  expect_open_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", le_bytes<float>({1}),
                    {"'w'", "missing field 'dtype'"});
  expect_open_error(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", le_bytes<float>({1}),
                    {"'w'", "'dtype' is not a string"});
  expect_open_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", le_bytes<float>({1}),
                    {"'w'", "missing field 'shape'"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})", le_bytes<float>({1}),
                    {"'w'", "'shape' is not an array"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
                    le_bytes<float>({1}), {"'w'", "shape[0] is not an integer"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":[1]}})", le_bytes<float>({1}),
                    {"'w'", "missing field 'data_offsets'"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
                    le_bytes<float>({1, 2}), {"'w'", "'data_offsets' is not an array of two"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
                    le_bytes<float>({1}), {"'w'", "not two non-negative integers"});
  expect_open_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                    le_bytes<float>({1, 2, 3}), {"'w'", "begin 8 is after end 4"});
}

TEST(Malformed, UnknownDtype) {
  expect_open_error(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                    le_bytes<double>({1.0}), {"unsupported dtype F64 for tensor 'w'"});
  expect_open_error(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})",
                    le_bytes<float>({1}), {"unsupported dtype f32 for tensor 'w'"});
}

TEST(Malformed, NegativeShape) {
  expect_open_error(R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}})", {},
                    {"'w'", "negative dimension shape[1] = -3"});
}

TEST(Malformed, ShapeOffsetMismatch) {
  // [2,3] F32 needs 24 bytes; the offsets give 20.
  expect_open_error(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", good_data(),
                    {"'w'", "needs 24 bytes", "hold 20"});
  // Same element count, but the dtype is wider than the range.
  expect_open_error(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", good_data(),
                    {"'w'", "I64 needs 16 bytes", "hold 8"});
}

TEST(Malformed, ShapeProductOverflow) {
  // 2^32 * 2^32 elements wraps a 64-bit product to 0, which would match [0, 0].
  expect_open_error(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", {},
      {"'w'", "too many elements"});
  // numel fits but numel * 4 bytes does not.
  expect_open_error(R"({"w":{"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]}})",
                    le_bytes<float>({1}), {"'w'", "too many elements"});
}

TEST(Malformed, OffsetsOutOfRange) {
  expect_open_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[28,36]}})", good_data(),
                    {"'w'", "end 36 is out of range", "32 bytes"});
  expect_open_error(
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})",
      good_data(), {"'w'", "out of range"});
}

TEST(Malformed, OverlappingTensors) {
  expect_open_error(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                    R"("b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}})",
                    good_data(), {"'a'", "'b'", "overlap"});
  // The same range twice is an overlap too.
  expect_open_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                    R"("b":{"dtype":"I32","shape":[2],"data_offsets":[8,16]}})",
                    good_data(), {"'a'", "'b'", "overlap"});
}

TEST(Malformed, EmptyTensorsDoNotOverlap) {
  // Zero-element tensors own no bytes, even at an offset inside another tensor.
  TempDir dir;
  const std::string path = dir.file("empty_tensors.safetensors");
  write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                      R"("z":{"dtype":"F16","shape":[0,5],"data_offsets":[8,8]}})",
                                      le_bytes<float>({1, 2, 3, 4})));
  SafetensorsFile f(path);
  EXPECT_TRUE(f.to_float("z").empty());
  EXPECT_EQ(f.info("z").shape, (std::vector<int64_t>{0, 5}));
}

TEST(Malformed, BadMetadata) {
  expect_open_error(R"({"__metadata__":[1]})", {}, {"__metadata__ is not a JSON object"});
  expect_open_error(R"({"__metadata__":{"format":"pt","n":3}})", {},
                    {"__metadata__ value for key 'n' is not a string"});
}

// A one-tensor file holding `data` as `dtype` with shape [count].
std::string single_tensor_file(const TempDir& dir, const std::string& dtype, size_t elem,
                               const std::vector<uint8_t>& data) {
  const std::string path = dir.file(dtype + ".safetensors");
  const size_t count = data.size() / elem;
  write_bytes(path, safetensors_bytes(R"({"t":{"dtype":")" + dtype + R"(","shape":[)" +
                                          std::to_string(count) + R"(],"data_offsets":[0,)" +
                                          std::to_string(data.size()) + "]}}",
                                      data));
  return path;
}

TEST(Malformed, NanAndInfInF32) {
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::string a = single_tensor_file(dir, "F32", 4, le_bytes<float>({1, 2, nan, 4}));
  expect_error([&] { SafetensorsFile(a).to_float("t"); }, {a, "'t'", "element 2", "NaN"});
  const std::string b = single_tensor_file(dir, "F32", 4, le_bytes<float>({1, 2, 3, 4, -inf}));
  expect_error([&] { SafetensorsFile(b).to_float("t"); }, {b, "'t'", "element 4", "infinite"});
}

TEST(Malformed, NanAndInfInF16) {
  TempDir dir;
  // fp16: 0x7e00 is a quiet NaN, 0x7c00 is +Inf, 0xfc00 is -Inf, 0x3c00 is 1.0.
  const std::string a = single_tensor_file(dir, "F16", 2, le_bytes<uint16_t>({0x3c00, 0x7e00}));
  expect_error([&] { SafetensorsFile(a).to_float("t"); }, {"'t'", "element 1", "NaN"});
  const std::string b =
      single_tensor_file(dir, "F16", 2, le_bytes<uint16_t>({0xfc00, 0x3c00, 0x3c00}));
  expect_error([&] { SafetensorsFile(b).to_float("t"); }, {"'t'", "element 0", "infinite"});
  // The largest finite fp16 (65504) is accepted.
  const std::string c = single_tensor_file(dir, "F16", 2, le_bytes<uint16_t>({0x7bff}));
  EXPECT_EQ(SafetensorsFile(c).to_float("t"), std::vector<float>{65504.0f});
}

TEST(Malformed, NanAndInfInBF16) {
  TempDir dir;
  // bf16: 0x7fc0 is a quiet NaN, 0x7f80 is +Inf, 0x3f80 is 1.0.
  const std::string a =
      single_tensor_file(dir, "BF16", 2, le_bytes<uint16_t>({0x3f80, 0x3f80, 0x3f80, 0x7fc0}));
  expect_error([&] { SafetensorsFile(a).to_float("t"); }, {"'t'", "element 3", "NaN"});
  const std::string b = single_tensor_file(dir, "BF16", 2, le_bytes<uint16_t>({0x3f80, 0x7f80}));
  expect_error([&] { SafetensorsFile(b).to_float("t"); }, {"'t'", "element 1", "infinite"});
}

TEST(Malformed, WrongAccessor) {
  TempDir dir;
  const std::string a = single_tensor_file(dir, "I32", 4, le_bytes<int32_t>({1, 2}));
  SafetensorsFile fa(a);
  expect_error([&] { fa.to_float("t"); }, {a, "'t'", "dtype I32", "float dtype"});
  expect_error([&] { fa.to_float("nope"); }, {a, "no tensor named 'nope'"});
  expect_error([&] { fa.info("nope"); }, {a, "no tensor named 'nope'"});
  const std::string b = single_tensor_file(dir, "F32", 4, le_bytes<float>({1, 2}));
  expect_error([&] { SafetensorsFile(b).to_int("t"); }, {b, "'t'", "dtype F32", "integer dtype"});
}

TEST(Malformed, UnalignedDataIsReadCorrectly) {
  // The tensors start at odd addresses in the (page-aligned) mapping; the values must
  // still come back exactly, without misaligned loads (UBSan checks this).
  TempDir dir;
  const std::string path = dir.file("unaligned.safetensors");
  std::string header = R"({"f":{"dtype":"F32","shape":[3],"data_offsets":[1,13]},)"
                       R"("h":{"dtype":"F16","shape":[1],"data_offsets":[13,15]},)"
                       R"("i":{"dtype":"I64","shape":[2],"data_offsets":[15,31]}})";
  while (header.size() % 8 != 0) header += ' ';  // file offsets 8 + N + {1, 13, 15}: all odd
  std::vector<uint8_t> data = {0xee};
  for (auto part : {le_bytes<float>({1.25f, -2.5f, 3e-5f}), le_bytes<uint16_t>({0xc000}),
                    le_bytes<int64_t>({-7, int64_t(1) << 40})}) {
    data.insert(data.end(), part.begin(), part.end());
  }
  write_bytes(path, safetensors_bytes(header, data));
  SafetensorsFile f(path);
  EXPECT_EQ(f.to_float("f"), (std::vector<float>{1.25f, -2.5f, 3e-5f}));
  EXPECT_EQ(f.to_float("h"), std::vector<float>{-2.0f});
  EXPECT_EQ(f.to_int("i"), (std::vector<int64_t>{-7, int64_t(1) << 40}));
  EXPECT_EQ(f.data("h")[1], 0xc0);
}

}  // namespace
}  // namespace zc::io
