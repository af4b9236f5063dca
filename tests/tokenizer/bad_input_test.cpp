// Bad files and bad input: a zc::Error whose message names the file and what was wrong.
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "toy_tokenizer.h"

namespace {

using nlohmann::json;

// Loads a tokenizer.json with the given text and returns the error message ("" if none).
std::string load_error(const std::string& content, std::string* path_out = nullptr) {
  const std::string path = toy::write(toy::temp_dir() / "tokenizer.json", content);
  if (path_out) *path_out = path;
  try {
    zc::tok::Tokenizer::from_files(path);
  } catch (const zc::Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& content, std::initializer_list<std::string> parts) {
  std::string path;
  const std::string message = load_error(content, &path);
  ASSERT_FALSE(message.empty()) << "no error for: " << content.substr(0, 200);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  for (const std::string& p : parts) EXPECT_NE(message.find(p), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

json valid() { return toy::bpe_json({{"a", 0}, {"b", 1}, {"ab", 2}}, {"a b"}); }

TEST(BadInput, NotJson) {
  expect_error("{\"model\": {", {"not valid JSON"});
  expect_error("", {"not valid JSON"});
  expect_error("[1, 2]", {"top level"});
}

TEST(BadInput, MissingOrUnknownModel) {
  json j = valid();
  j.erase("model");
  expect_error(j.dump(), {"model"});
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    j = valid();
    j["model"]["type"] = type;
    expect_error(j.dump(), {type, "not supported"});
  }
  j = valid();
  j["model"].erase("type");
  j["model"].erase("merges");
  expect_error(j.dump(), {"type"});
}

TEST(BadInput, BrokenModelFields) {
  json j = valid();
  j["model"]["merges"] = {"a c"};
  expect_error(j.dump(), {"merges[0]", "'c'"});
  j["model"]["merges"] = {"a b c"};
  expect_error(j.dump(), {"merges[0]"});
  j["model"]["merges"] = {"b a"};
  expect_error(j.dump(), {"merged token 'ba'"});
  j = valid();
  j["model"]["vocab"]["x"] = -3;
  expect_error(j.dump(), {"vocab['x']"});
  j = valid();
  j["model"]["unk_token"] = "<unk>";
  expect_error(j.dump(), {"unk_token"});
  j = valid();
  j["model"]["dropout"] = 0.1;
  expect_error(j.dump(), {"dropout"});
}

TEST(BadInput, UnsupportedComponentsAreNamed) {
  json j = valid();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}};
  expect_error(j.dump(), {"normalizer.normalizers[0]", "Lowercase"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j.dump(), {"pre_tokenizer", "Whitespace"});
  j = valid();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j.dump(), {"decoder", "WordPiece"});
  j = valid();
  j["post_processor"] = {{"type", "Mystery"}};
  expect_error(j.dump(), {"post_processor", "Mystery"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
  expect_error(j.dump(), {"pre_tokenizer.pattern", "(a"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Sideways"}};
  expect_error(j.dump(), {"behavior", "Sideways"});
  j = valid();
  j["added_tokens"] = {{{"content", "<x>"}}};
  expect_error(j.dump(), {"added_tokens[0].id"});
}

TEST(BadInput, MissingFilesAndFolders) {
  const auto dir = toy::temp_dir();
  try {
    zc::tok::Tokenizer::from_dir(dir.string());
    FAIL() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  try {
    zc::tok::Tokenizer::from_files((dir / "absent.json").string());
    FAIL() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos) << e.what();
  }
}

TEST(BadInput, ConfigNamingAnUnknownToken) {
  const auto dir = toy::temp_dir();
  toy::write(dir / "tokenizer.json", valid().dump());
  const std::string config = toy::write(dir / "tokenizer_config.json", R"({"bos_token": "<nope>"})");
  try {
    zc::tok::Tokenizer::from_dir(dir.string());
    FAIL() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find(config), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<nope>"), std::string::npos) << e.what();
  }
  toy::write(dir / "tokenizer_config.json", "{not json");
  EXPECT_THROW(zc::tok::Tokenizer::from_dir(dir.string()), zc::Error);
}

TEST(BadInput, EncodeRejectsInvalidUtf8) {
  const auto tok = toy::load(valid());
  try {
    tok.encode("ab\xC3", false);
    FAIL() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("UTF-8 (byte 2)"), std::string::npos) << e.what();
  }
  // Ids no token has are skipped by decode, as HF does.
  EXPECT_EQ(tok.decode({0, 99, -1, 1}), "a b");
}

}  // namespace
