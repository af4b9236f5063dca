// items.jsonl: records round-trip, a reloaded store finds them by key, and a line torn
// by an interruption is skipped without losing the records after it.
#include "eval/records.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using namespace zc::eval;

ItemRecord sample(int index, const std::string& method) {
  ItemRecord r;
  r.model = "/m", r.task = "lines", r.params = "lines=10", r.method = method, r.index = index, r.seed = 99;
  r.resolved = method + ":budget=0.25", r.item_seed = 0xFFFFFFFFFFFFFFF1ull, r.expected = "123";
  r.extracted = "12", r.output = " The \"quoted\" ünïcode\n answer", r.stop_reason = "eos";
  r.correct = index % 2 == 0, r.prompt_tokens = 1000 + index, r.generated_tokens = 7;
  r.prefill_seconds = 0.5, r.decode_seconds = 0.25, r.ratio = 4.91, r.bits_per_value = 16 / 4.91;
  r.cache_bytes = 1234567, r.fp16_bytes = 6061723, r.nll = 12.5, r.scored_tokens = 3;
  return r;
}

std::string path_for(const std::string& name) {
  const std::string p = ::testing::TempDir() + "/zc_eval_" + name;
  std::filesystem::remove(p);
  return p;
}

TEST(Records, JsonRoundTrip) {
  const ItemRecord r = sample(3, "h2o");
  const ItemRecord back = record_from_json(nlohmann::json::parse(to_json(r).dump()));
  EXPECT_EQ(to_json(back), to_json(r));
  EXPECT_EQ(back.key(), r.key());
  EXPECT_EQ(back.item_seed, r.item_seed);
  nlohmann::json j = to_json(r);
  j.erase("ratio");
  EXPECT_THROW(record_from_json(j), zc::Error);
  j = to_json(r);
  j["index"] = "three";
  EXPECT_THROW(record_from_json(j), zc::Error);
}

// A GPU item keeps its device through the file; records written before the device
// field existed load as the CPU's, under the keys they had.
TEST(Records, DeviceRoundTripsAndOldRecordsAreTheCpus) {
  ItemRecord r = sample(2, "zipcache");
  r.device = "cuda";
  const ItemRecord back = record_from_json(nlohmann::json::parse(to_json(r).dump()));
  EXPECT_EQ(back.device, "cuda");
  EXPECT_EQ(back.key(), r.key());
  nlohmann::json old = to_json(sample(2, "zipcache"));
  old.erase("device");
  const ItemRecord cpu = record_from_json(old);
  EXPECT_EQ(cpu.device, "cpu");
  EXPECT_EQ(cpu.key(), nlohmann::json::array({"/m", "lines", "lines=10", "zipcache", 2, 99}).dump());
  EXPECT_NE(cpu.key(), back.key());
  old["device"] = "";
  EXPECT_THROW(record_from_json(old), zc::Error);
}

TEST(Records, KeysSeparateEveryField) {
  const std::string k = item_key("/m", "lines", "lines=10", "fp16", 0, 1);
  EXPECT_NE(k, item_key("/m2", "lines", "lines=10", "fp16", 0, 1));
  EXPECT_NE(k, item_key("/m", "kv", "lines=10", "fp16", 0, 1));
  EXPECT_NE(k, item_key("/m", "lines", "lines=20", "fp16", 0, 1));
  EXPECT_NE(k, item_key("/m", "lines", "lines=10", "fp16 ", 0, 1));
  EXPECT_NE(k, item_key("/m", "lines", "lines=10", "fp16", 1, 1));
  EXPECT_NE(k, item_key("/m", "lines", "lines=10", "fp16", 0, 2));
  EXPECT_EQ(k, item_key("/m", "lines", "lines=10", "fp16", 0, 1, "cpu"));
  EXPECT_NE(k, item_key("/m", "lines", "lines=10", "fp16", 0, 1, "cuda"));
}

TEST(Records, StoreAppendsAndReloads) {
  const std::string path = path_for("store.jsonl");
  {
    ItemStore s(path);
    EXPECT_EQ(s.size(), 0u);
    for (int i = 0; i < 4; ++i) s.append(sample(i, "fp16"));
  }
  ItemStore s(path);
  EXPECT_EQ(s.size(), 4u);
  EXPECT_TRUE(s.warnings().empty());
  ASSERT_NE(s.find(sample(2, "fp16").key()), nullptr);
  EXPECT_EQ(to_json(*s.find(sample(2, "fp16").key())), to_json(sample(2, "fp16")));
  EXPECT_EQ(s.find(sample(2, "kivi2").key()), nullptr);
}

TEST(Records, TornLastLineIsSkippedAndTheNextRecordStartsOnItsOwnLine) {
  const std::string path = path_for("torn.jsonl");
  {
    ItemStore s(path);
    s.append(sample(0, "fp16"));
  }
  const std::string full = to_json(sample(1, "fp16")).dump();
  std::ofstream(path, std::ios::app) << full.substr(0, full.size() / 2);  // killed mid-write
  {
    ItemStore s(path);
    EXPECT_EQ(s.size(), 1u);
    ASSERT_EQ(s.warnings().size(), 1u);
    EXPECT_NE(s.warnings()[0].find("torn.jsonl:2"), std::string::npos) << s.warnings()[0];
    s.append(sample(1, "fp16"));
  }
  ItemStore s(path);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.warnings().size(), 1u);  // the torn half stays, on its own line
  ASSERT_NE(s.find(sample(1, "fp16").key()), nullptr);
}

}  // namespace
