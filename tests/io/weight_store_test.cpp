// WeightStore on hand-made model directories: a single file, a sharded index, and
// each way an index can disagree with its shards.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace zc::io {
namespace {

using testing::expect_error;
using testing::le_bytes;
using testing::safetensors_bytes;
using testing::TempDir;
using testing::write_bytes;

void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// Shard 1 holds "a" (F32 [2]) and "extra" (F32 [1]); shard 2 holds "b" (F32 [3]).
void write_shards(const TempDir& dir) {
  write_bytes(dir.file("s1.safetensors"),
              safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("extra":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                le_bytes<float>({1, 2, 9})));
  write_bytes(dir.file("s2.safetensors"),
              safetensors_bytes(R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
                                le_bytes<float>({3, 4, 5})));
}

TEST(WeightStore, SingleFile) {
  TempDir dir;
  write_bytes(dir.file("model.safetensors"),
              safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})",
                                le_bytes<float>({7, 8})));
  WeightStore ws(dir.path().string());
  EXPECT_EQ(ws.names(), std::vector<std::string>{"x"});
  EXPECT_TRUE(ws.has("x"));
  EXPECT_FALSE(ws.has("y"));
  EXPECT_EQ(ws.to_float("x"), (std::vector<float>{7, 8}));
  EXPECT_EQ(ws.info("x").shape, (std::vector<int64_t>{1, 2}));
  expect_error([&] { ws.info("y"); }, {dir.path().string(), "no tensor named 'y'"});
}

TEST(WeightStore, Sharded) {
  TempDir dir;
  write_shards(dir);
  write_text(dir.file("model.safetensors.index.json"),
             R"({"metadata":{"total_size":24},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  WeightStore ws(dir.path().string());
  // "extra" is in a shard but not in the index: still reachable.
  EXPECT_EQ(ws.names(), (std::vector<std::string>{"a", "b", "extra"}));
  EXPECT_EQ(ws.to_float("a"), (std::vector<float>{1, 2}));
  EXPECT_EQ(ws.to_float("b"), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(ws.to_float("extra"), std::vector<float>{9});
  EXPECT_EQ(ws.file_of("b").path(), dir.file("s2.safetensors"));
  EXPECT_EQ(&ws.file_of("a"), &ws.file_of("extra"));  // each shard opened once
}

TEST(WeightStore, IndexTakesPrecedenceOverSingleFile) {
  TempDir dir;
  write_shards(dir);
  write_text(dir.file("model.safetensors.index.json"), R"({"weight_map":{"b":"s2.safetensors"}})");
  write_text(dir.file("model.safetensors"), "garbage that is never opened");
  WeightStore ws(dir.path().string());
  EXPECT_EQ(ws.names(), std::vector<std::string>{"b"});
}

TEST(WeightStore, NoWeights) {
  TempDir dir;
  expect_error([&] { WeightStore ws(dir.path().string()); },
               {dir.path().string() + ": no model.safetensors or model.safetensors.index.json"});
}

TEST(WeightStore, MissingShard) {
  TempDir dir;
  write_shards(dir);
  const std::string index = dir.file("model.safetensors.index.json");
  write_text(index, R"({"weight_map":{"a":"s1.safetensors","b":"s3.safetensors"}})");
  expect_error([&] { WeightStore ws(dir.path().string()); },
               {index, dir.file("s3.safetensors"), "'b'", "does not exist"});
}

TEST(WeightStore, IndexNamesTensorTheShardLacks) {
  TempDir dir;
  write_shards(dir);
  const std::string index = dir.file("model.safetensors.index.json");
  // "b" lives in s2, but the index says s1.
  write_text(index, R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  expect_error([&] { WeightStore ws(dir.path().string()); },
               {index, "'b'", "s1.safetensors", "does not contain"});
}

TEST(WeightStore, MalformedIndex) {
  TempDir dir;
  write_shards(dir);
  const std::string index = dir.file("model.safetensors.index.json");
  const std::string d = dir.path().string();
  write_text(index, R"({"weight_map":)");
  expect_error([&] { WeightStore ws(d); }, {index, "not valid JSON"});
  write_text(index, R"({"metadata":{}})");
  expect_error([&] { WeightStore ws(d); }, {index, "missing field 'weight_map'"});
  write_text(index, R"({"weight_map":["a"]})");
  expect_error([&] { WeightStore ws(d); }, {index, "'weight_map' is not an object"});
  write_text(index, R"({"weight_map":{}})");
  expect_error([&] { WeightStore ws(d); }, {index, "no tensors"});
  write_text(index, R"({"weight_map":{"a":3}})");
  expect_error([&] { WeightStore ws(d); }, {index, "'a'", "not a string"});
  write_text(index, R"({"weight_map":{"a":"../s1.safetensors"}})");
  expect_error([&] { WeightStore ws(d); }, {index, "'a'", "not a file name inside"});
  write_text(index, R"({"weight_map":{"a":"/etc/passwd"}})");
  expect_error([&] { WeightStore ws(d); }, {index, "'a'", "not a file name inside"});
}

TEST(WeightStore, MalformedShardIsReportedByPath) {
  TempDir dir;
  write_shards(dir);
  write_text(dir.file("s2.safetensors"), "xx");
  write_text(dir.file("model.safetensors.index.json"),
             R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  expect_error([&] { WeightStore ws(dir.path().string()); },
               {dir.file("s2.safetensors"), "shorter than"});
}

}  // namespace
}  // namespace zc::io
