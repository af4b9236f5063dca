// Batched forward: sequences of different lengths in one call (prefill + prefill,
// prefill + decode, decode + decode) give the logits each gives alone; bad requests
// are refused before any cache changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "kv/method.h"
#include "model/forward.h"
#include "model/testdata.h"

namespace zc::model {
namespace {

using test::rel_l2;

kv::MethodConfig exact() {
  kv::MethodConfig c;
  c.method = kv::Method::Fp32;
  return c;
}

// Rows of one batched sgemm may round differently from a smaller one (other
// blocking), so "the same" means within fp32 rounding, far below the golden 1e-4.
constexpr double kSame = 1e-5;

class Batch : public ::testing::TestWithParam<std::string> {};

TEST_P(Batch, MixedLengthsMatchAlone) {
  const Model model = Model::load(test::models_dir() + "/" + GetParam());
  const int V = model.config().vocab_size;
  const auto cases = test::golden_cases(GetParam());
  ASSERT_GE(cases.size(), 3u);
  const std::vector<int32_t>& pa = cases[1].prompt;  // 7 tokens
  const std::vector<int32_t>& pb = cases[2].prompt;  // 64 tokens
  const std::vector<int32_t>& pc = cases[0].prompt;  // 1 token

  // Alone: a and c prefilled then decoded two steps; b prefilled (all logits).
  SequenceState a1 = model.new_sequence(exact()), b1 = model.new_sequence(exact()),
                c1 = model.new_sequence(exact());
  const auto la = model.forward(a1, pa);
  const auto lb = model.forward(b1, pb, true);
  const auto lc = model.forward(c1, pc);
  const int32_t ta[1] = {5}, tc[1] = {9}, tb[3] = {11, 12, 13};
  const auto la2 = model.forward(a1, ta);
  const auto lc2 = model.forward(c1, tc);
  const auto lb2 = model.forward(b1, tb);

  // Together: a, b, c prefilled in one call; then a and c decode while b takes a
  // chunk of 3 more tokens, all in one call.
  SequenceState a2 = model.new_sequence(exact()), b2 = model.new_sequence(exact()),
                c2 = model.new_sequence(exact());
  const ForwardRequest first[] = {{&a2, pa, false}, {&b2, pb, true}, {&c2, pc, false}};
  const auto out = model.forward(first);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(out[0].size(), static_cast<size_t>(V));
  ASSERT_EQ(out[1].size(), pb.size() * V);
  ASSERT_EQ(out[2].size(), static_cast<size_t>(V));
  EXPECT_LE(rel_l2(out[0].data(), la.data(), V), kSame);
  for (size_t t = 0; t < pb.size(); ++t) {
    EXPECT_LE(rel_l2(out[1].data() + t * V, lb.data() + t * V, V), kSame) << "position " << t;
  }
  EXPECT_LE(rel_l2(out[2].data(), lc.data(), V), kSame);
  EXPECT_EQ(a2.position, static_cast<int>(pa.size()));
  EXPECT_EQ(b2.position, static_cast<int>(pb.size()));

  const ForwardRequest second[] = {{&c2, tc, false}, {&a2, ta, false}, {&b2, tb, false}};
  const auto out2 = model.forward(second);
  EXPECT_LE(rel_l2(out2[0].data(), lc2.data(), V), kSame);
  EXPECT_LE(rel_l2(out2[1].data(), la2.data(), V), kSame);
  EXPECT_LE(rel_l2(out2[2].data(), lb2.data(), V), kSame);
  EXPECT_EQ(a2.position, static_cast<int>(pa.size()) + 1);
  EXPECT_EQ(b2.position, static_cast<int>(pb.size()) + 3);
  EXPECT_EQ(a2.caches[0]->length(), a2.position);
}

INSTANTIATE_TEST_SUITE_P(Models, Batch,
                         ::testing::Values("llama3-tiny", "qwen3-tiny", "mistral-tiny"),
                         [](const auto& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(BatchErrors, RefusedBeforeAnyChange) {
  const Model model = Model::load(test::models_dir() + "/llama-f32-sharded");
  const int max_pos = model.config().max_position_embeddings;  // 2048
  SequenceState s = model.new_sequence(exact(), 16);
  SequenceState other = model.new_sequence(exact());
  const std::vector<int32_t> ten(10, 3), seven(7, 4), bad{1, 300, 2};
  model.forward(s, ten);

  // Past the context limit: 10 + 7 > 16.
  std::string m = error_of([&] { model.forward(s, seven); });
  EXPECT_NE(m.find("context limit of 16"), std::string::npos) << m;
  // Token id outside the vocabulary (300 of 300).
  m = error_of([&] { model.forward(other, bad); });
  EXPECT_NE(m.find("token id 300 at index 1"), std::string::npos) << m;
  m = error_of([&] { model.forward(other, std::span<const int32_t>()); });
  EXPECT_NE(m.find("no tokens"), std::string::npos) << m;
  // A valid request beside a bad one: neither runs.
  const ForwardRequest mixed[] = {{&other, seven, false}, {&s, seven, false}};
  m = error_of([&] { model.forward(mixed); });
  EXPECT_NE(m.find("request 1"), std::string::npos) << m;
  const ForwardRequest twice[] = {{&other, seven, false}, {&other, seven, false}};
  m = error_of([&] { model.forward(twice); });
  EXPECT_NE(m.find("repeats"), std::string::npos) << m;
  EXPECT_EQ(s.position, 10);
  EXPECT_EQ(other.position, 0);
  for (const auto& c : s.caches) EXPECT_EQ(c->length(), 10);
  for (const auto& c : other.caches) EXPECT_EQ(c->length(), 0);

  // The model's own limit.
  m = error_of([&] { model.new_sequence(exact(), max_pos + 1); });
  EXPECT_NE(m.find("2048"), std::string::npos) << m;
  SequenceState full = model.new_sequence(exact());
  const std::vector<int32_t> too_long(static_cast<size_t>(max_pos) + 1, 1);
  m = error_of([&] { model.forward(full, too_long); });
  EXPECT_NE(m.find("max_position_embeddings 2048"), std::string::npos) << m;

  // After the refusals the sequence still continues correctly: exactly at the limit.
  const std::vector<int32_t> six(6, 4);
  EXPECT_EQ(model.forward(s, six).size(), static_cast<size_t>(model.config().vocab_size));
  EXPECT_EQ(s.position, 16);
}

}  // namespace
}  // namespace zc::model
