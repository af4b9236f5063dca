// engine::BatchScheduler (continuous batching): concurrent jobs through a batch of
// slots, against HF transformers' greedy continuations of the golden models
// (../shared/testdata/models/*/golden.json) and against the one-sequence generation
// loop on random prompts; admission, method switches, cancelling, stopping and failures
// with a scripted batch decoder.
#include "engine/batch_scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "model/testdata.h"

namespace zc::engine {
namespace {

using model::test::golden_cases;
using model::test::golden_models;

GenerationOptions greedy(int max_tokens) {
  GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  o.ignore_eos = true;
  return o;
}

// Single-sequence decoders stepped in turn.
BatchDecoderFactory sequential_batches(const model::Model& model) {
  return [&model](const kv::MethodConfig& m, int context, int slots) {
    return sequential_batch([&model](const kv::MethodConfig& mm, int c) { return cpu_decoder(model, mm, c); }, m,
                            context, slots, model.config().vocab_size);
  };
}

// The model's own batch: one forward over every busy slot's row.
BatchDecoderFactory stacked_batches(const model::Model& model) {
  return [&model](const kv::MethodConfig& m, int context, int slots) { return cpu_batch(model, m, context, slots); };
}

// Every golden case three times at once through 3 slots (more jobs than slots): each job's greedy
// reply is transformers' continuation until a step whose reference margin is within
// rounding (fp32 cache: 1e-3).
class BatchGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchGolden, ConcurrentJobsGiveTheReferenceContinuations) {
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + GetParam());
  for (const bool stacked : {true, false}) {
  SCOPED_TRACE(stacked ? "cpu_batch" : "sequential_batch");
  BatchScheduler scheduler(stacked ? stacked_batches(model) : sequential_batches(model), model.config(), nullptr, 512, 3);
  std::vector<model::test::GoldenCase> cases;
  for (int rep = 0; rep < 3; ++rep) {
    for (auto& g : golden_cases(GetParam())) cases.push_back(std::move(g));
  }
  std::vector<std::shared_ptr<BatchTicket>> tickets;
  for (const auto& g : cases) {
    tickets.push_back(scheduler.submit(BatchJob{g.prompt, kv::parse_method("fp32"), greedy(int(g.greedy_ids.size()))}));
  }
  size_t matched = 0, total = 0;
  for (size_t c = 0; c < cases.size(); ++c) {
    const GenerationResult r = tickets[c]->result();
    const auto& g = cases[c];
    ASSERT_EQ(r.tokens.size(), g.greedy_ids.size());
    EXPECT_EQ(r.prompt_tokens, int(g.prompt.size()));
    size_t i = 0;
    for (; i < r.tokens.size(); ++i) {
      if (r.tokens[i] != g.greedy_ids[i]) {
        EXPECT_LE(g.greedy_margin[i], 1e-3) << "case " << c << " step " << i;
        break;
      }
    }
    matched += i, total += r.tokens.size();
  }
  const BatchScheduler::Stats st = scheduler.stats();
  EXPECT_EQ(st.prefills, static_cast<long long>(cases.size()));
  EXPECT_LE(st.max_rows, 3);
  if (cases.size() >= 3) {
    EXPECT_EQ(st.max_rows, 3);
  }
  std::printf("[ measure  ] %s (%s): greedy matched %zu of %zu tokens, %lld steps of %.2f rows\n",
              GetParam().c_str(), stacked ? "cpu_batch" : "sequential_batch", matched, total, st.steps,
              double(st.step_rows) / double(std::max(1LL, st.steps)));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BatchGolden, ::testing::ValuesIn(golden_models()));

// Random prompts (1 to 40 tokens), sampled with seeds and penalties, random limits and
// stop strings of ids, for each cache method and 1, 2 and 5 slots, submitted from
// several threads: each job equals the one-sequence loop's generation of it.
TEST(BatchScheduler, JobsEqualOneSequenceGenerations) {
  const auto names = golden_models();
  ASSERT_FALSE(names.empty());
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + names.front());
  const int vocab = model.config().vocab_size, context = 96;
  std::mt19937 rng(11);
  for (const char* method : {"fp16", "kivi2", "zipcache"}) {
    for (int slots : {1, 2, 5}) {
      SCOPED_TRACE(std::string(method) + " slots " + std::to_string(slots));
      const kv::MethodConfig m = kv::parse_method(method);
      std::vector<BatchJob> jobs;
      for (int j = 0; j < 7; ++j) {
        BatchJob job;
        const int n = std::uniform_int_distribution<int>(1, 40)(rng);
        for (int i = 0; i < n; ++i) job.prompt.push_back(std::uniform_int_distribution<int>(0, vocab - 1)(rng));
        job.method = m;
        job.options.max_tokens = std::uniform_int_distribution<int>(0, 30)(rng);
        job.options.sampling.temperature = j % 3 == 0 ? 0.0f : 0.9f;
        job.options.sampling.repeat_penalty = j % 2 ? 1.3f : 1.0f;
        job.options.sampling.seed = uint64_t(rng());
        if (j == 4) job.options.max_tokens = -1;  // until the context is full
        if (j == 5) job.options.stop = {","};     // without a tokenizer the text is ids joined by commas
        jobs.push_back(job);
      }
      BatchScheduler scheduler(sequential_batches(model), model.config(), nullptr, context, slots);
      std::vector<std::shared_ptr<BatchTicket>> tickets(jobs.size());
      std::vector<std::thread> clients;
      for (size_t j = 0; j < jobs.size(); ++j)
        clients.emplace_back([&, j] { tickets[j] = scheduler.submit(jobs[j]); });
      for (auto& t : clients) t.join();
      for (size_t j = 0; j < jobs.size(); ++j) {
        GenerationOptions o = jobs[j].options;
        o.context = context;
        const GenerationResult want = generate(model, nullptr, m, jobs[j].prompt, o);
        std::string streamed, piece;
        while (tickets[j]->wait_text(&piece)) streamed += piece;
        const GenerationResult got = tickets[j]->result();
        EXPECT_EQ(got.tokens, want.tokens) << "job " << j;
        EXPECT_EQ(got.text, want.text) << "job " << j;
        EXPECT_EQ(streamed, want.text) << "job " << j;
        EXPECT_EQ(got.stop_reason, want.stop_reason) << "job " << j;
        EXPECT_EQ(got.memory.total(), want.memory.total()) << "job " << j;
      }
    }
  }
}

// A scripted batch: the next token of a slot is its last one plus one (one-hot logits),
// with hooks for failures; counts what the scheduler asked of it.
struct Script {
  std::atomic<int> made{0}, prefills{0}, releases{0};
  int fail_make = -1;          // the n-th batch made throws
  int fail_rows = 0;           // a step of this many rows or more throws (0: none)
  int32_t nan_after = -1;      // a row whose fed token is this gives NaN logits
  int memory_slots = 0;        // > 0: a prefill beside this many busy slots is out of memory
  size_t memory_tokens = 1000; // a longer prompt is out of memory even alone
  std::atomic<int> steps{0};
  // Each step takes this long, so that jobs submitted one after another overlap.
  std::chrono::microseconds step_time{1000};
  std::vector<std::string> methods;  // of the batches made, in order
  // The batch picks tokens itself (as the GPU's does): step_pick leaves NaN in the rows
  // whose token it picked, and records each row's pick.
  bool device_picks = false;
  std::vector<std::pair<int32_t, TokenPick>> picked_rows;  // (token fed, pick) per row
};

class ScriptedBatch final : public BatchDecoder {
 public:
  ScriptedBatch(Script& s, int slots) : s_(s), busy_(size_t(slots), false) {}
  int slots() const override { return int(busy_.size()); }
  int vocab() const override { return 50; }
  std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int max_new_tokens) override {
    EXPECT_GE(max_new_tokens, 0);
    EXPECT_LE(size_t(max_new_tokens) + prompt.size(), 64u);
    EXPECT_FALSE(busy_.at(size_t(slot)));
    const long busy = std::count(busy_.begin(), busy_.end(), true);
    if ((s_.memory_slots > 0 && busy >= s_.memory_slots) || prompt.size() > s_.memory_tokens)
      throw OutOfMemory("kv pool: out of memory");
    busy_[size_t(slot)] = true;
    ++s_.prefills;
    return one_hot(prompt.back());
  }
  std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) override {
    ++s_.steps;
    std::this_thread::sleep_for(s_.step_time);
    if (s_.fail_rows > 0 && int(slots.size()) >= s_.fail_rows) fail("device lost");
    std::vector<float>& logits = logits_;
    logits.clear();
    for (size_t i = 0; i < slots.size(); ++i) {
      EXPECT_TRUE(busy_.at(size_t(slots[i])));
      if (s_.device_picks) s_.picked_rows.emplace_back(ids[i], marks_.empty() ? TokenPick{} : marks_[i]);
      std::vector<float> row = one_hot(ids[i]);
      if (ids[i] == s_.nan_after) row[3] = std::nanf("");
      logits.insert(logits.end(), row.begin(), row.end());
    }
    return logits;
  }
  std::span<const float> step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                   std::span<const TokenPick> picks, std::span<int32_t> tokens) override {
    if (!s_.device_picks) return BatchDecoder::step_pick(slots, ids, picks, tokens);
    marks_ = picks;
    const std::span<const float> rows = step(slots, ids);
    marks_ = {};
    const size_t v = size_t(vocab());
    for (size_t i = 0; i < slots.size(); ++i) {
      if (picks[i].kind == TokenPick::Kind::kLogits) continue;
      tokens[i] = pick_on_host(rows.subspan(i * v, v), picks[i]);
      std::fill(logits_.begin() + long(i * v), logits_.begin() + long((i + 1) * v), std::nanf(""));
    }
    return rows;
  }
  bool draws_on_device() const override { return s_.device_picks; }
  kv::MemoryReport memory(int) const override { return {}; }
  void release(int slot) override {
    busy_.at(size_t(slot)) = false;
    ++s_.releases;
  }

 private:
  std::vector<float> one_hot(int32_t last) const {
    std::vector<float> row(size_t(vocab()), 0.0f);
    row[size_t((last + 1) % vocab())] = 10.0f;
    return row;
  }
  Script& s_;
  std::vector<bool> busy_;
  std::span<const TokenPick> marks_;  // step_pick's picks while it runs step()
  std::vector<float> logits_;
};

BatchDecoderFactory scripted(Script& s) {
  return [&s](const kv::MethodConfig& m, int, int slots) -> std::unique_ptr<BatchDecoder> {
    if (s.made++ == s.fail_make) fail("out of memory");
    s.methods.push_back(kv::method_name(m.method));
    return std::make_unique<ScriptedBatch>(s, slots);
  };
}

model::ModelConfig scripted_config() {
  model::ModelConfig c;
  c.vocab_size = 50;
  c.max_position_embeddings = 64;
  return c;
}

BatchJob job(std::vector<int32_t> prompt, int max_tokens, const char* method = "fp16") {
  return BatchJob{std::move(prompt), kv::parse_method(method), greedy(max_tokens)};
}

std::vector<int32_t> counting(int32_t from, int n) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back((from + i) % 50);
  return v;
}

TEST(BatchScheduler, CountsTokensAndFreesSlots) {
  Script s;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 2);
  std::vector<std::shared_ptr<BatchTicket>> t;
  for (int j = 0; j < 5; ++j) t.push_back(scheduler.submit(job({int32_t(10 * j)}, 3 + j)));
  for (int j = 0; j < 5; ++j) {
    const GenerationResult r = t[size_t(j)]->result();
    EXPECT_EQ(r.tokens, counting(10 * j + 1, 3 + j)) << j;
    EXPECT_EQ(r.stop_reason, "max tokens");
  }
  // A prompt filling all but one position: one token fed, a second sampled, then "context full".
  const GenerationResult full = scheduler.submit(job(std::vector<int32_t>(63, 7), 10))->result();
  EXPECT_EQ(full.tokens, counting(8, 2));
  EXPECT_EQ(full.stop_reason, "context full");
  scheduler.stop();
  EXPECT_EQ(s.made, 1);
  EXPECT_EQ(s.prefills, 6);
  EXPECT_EQ(s.releases, 6);
  EXPECT_EQ(scheduler.stats().max_rows, 2);
  // Each scripted step sleeps 1 ms: the step time counts them, and sampling is apart.
  const BatchScheduler::Stats st = scheduler.stats();
  EXPECT_GE(st.step_seconds, 1e-3 * double(st.steps));
  EXPECT_GT(st.sample_seconds, 0.0);
  EXPECT_GT(st.prefill_seconds, 0.0);
}

TEST(BatchScheduler, RefusesBadPromptsAtSubmit) {
  Script s;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 2);
  EXPECT_THROW(scheduler.submit(job({}, 3)), zc::Error);
  EXPECT_THROW(scheduler.submit(job(std::vector<int32_t>(64, 1), 3)), zc::Error);
  EXPECT_THROW(BatchScheduler(scripted(s), c, nullptr, 64, 0), zc::Error);
  EXPECT_THROW(BatchScheduler({}, c, nullptr, 64, 2), zc::Error);
}

// A job of another method waits for the batch to drain, and holds back the jobs
// behind it; the batch is then made again for its method.
TEST(BatchScheduler, SwitchesMethodsInArrivalOrder) {
  Script s;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 4);
  auto a = scheduler.submit(job({1}, 20, "fp16"));
  auto b = scheduler.submit(job({2}, 5, "kivi2"));
  auto d = scheduler.submit(job({3}, 5, "fp16"));
  EXPECT_EQ(a->result().tokens.size(), 20u);
  EXPECT_EQ(b->result().tokens.size(), 5u);
  EXPECT_EQ(d->result().tokens.size(), 5u);
  scheduler.stop();
  ASSERT_GE(s.methods.size(), 2u);
  EXPECT_EQ(s.methods[0], "fp16");
  EXPECT_EQ(s.methods[1], "kivi");
  // d came after b, so it ran in a third batch (fp16 again), not beside a.
  ASSERT_EQ(s.methods.size(), 3u);
  EXPECT_EQ(s.methods[2], "fp16");
}

TEST(BatchScheduler, CancelEndsOneJob) {
  Script s;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 2);
  BatchJob endless = job({1}, -1);
  std::atomic<int> asked{0};
  endless.options.cancelled = [&] { return ++asked > 5; };  // the job's own hook
  auto a = scheduler.submit(endless);
  auto b = scheduler.submit(job({1}, -1));
  std::string text;
  ASSERT_TRUE(b->wait_text(&text));  // b runs
  b->cancel();                       // the ticket's hook
  const GenerationResult ra = a->result(), rb = b->result();
  EXPECT_EQ(ra.stop_reason, "cancelled");
  EXPECT_EQ(ra.tokens.size(), 6u);
  EXPECT_EQ(rb.stop_reason, "cancelled");
  EXPECT_LT(rb.tokens.size(), 63u);
  // The slots are free again.
  EXPECT_EQ(scheduler.submit(job({4}, 2))->result().tokens, counting(5, 2));
}

TEST(BatchScheduler, FailuresReachTheirJobsAndTheSchedulerGoesOn) {
  Script s;
  s.fail_make = 0;  // the first batch cannot be made
  s.fail_rows = 2;
  s.nan_after = 31;  // a row fed 31 gives NaN logits
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 3);
  EXPECT_THROW(scheduler.submit(job({1}, 4))->result(), zc::Error);
  // A step of two rows fails: both running jobs fail with it.
  auto a = scheduler.submit(job({1}, 30));
  auto b = scheduler.submit(job({5}, 30));
  EXPECT_THROW(a->result(), zc::Error);
  EXPECT_THROW(b->result(), zc::Error);
  // NaN logits fail that job only (one job at a time: steps of two rows fail).
  auto bad = scheduler.submit(job({29}, 10));
  try {
    bad->result();
    ADD_FAILURE() << "NaN logits gave a result";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  EXPECT_EQ(scheduler.submit(job({1}, 10))->result().tokens, counting(2, 10));
}

// Jobs without penalty or logprobs take their token from the batch (step_pick: a GPU
// batch copies no row for them): greedy ones its argmax, sampled ones its draw with the
// seed's next uniform; penalized and logprob jobs read their rows. Job j feeds the tokens
// 10 j + 1, ...: each row's pick is checked by its job.
TEST(BatchScheduler, RowsWithoutPenaltyTakeTheBatchsPick) {
  Script s;
  s.device_picks = true;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 4);
  std::vector<BatchJob> jobs;
  jobs.push_back(job({0}, 6));  // plain greedy: argmax only
  jobs.push_back(job({10}, 6));
  jobs.back().options.sampling.repeat_penalty = 1.3f;
  jobs.push_back(job({20}, 6));
  jobs.back().options.logprobs = 0;
  jobs.push_back(job({30}, 6));
  jobs.back().options.sampling.temperature = 0.7f;
  jobs.back().options.sampling.top_k = 1;
  jobs.back().options.sampling.seed = 99;
  jobs.push_back(job({40}, 6));
  jobs.back().options.sampling.presence_penalty = 0.5f;
  std::vector<std::shared_ptr<BatchTicket>> tickets;
  for (const BatchJob& j : jobs) tickets.push_back(scheduler.submit(j));
  for (size_t j = 0; j < jobs.size(); ++j) {
    const GenerationResult r = tickets[j]->result();
    EXPECT_EQ(r.tokens, counting(int32_t(10 * j + 1), 6)) << j;
    if (j == 2) {
      EXPECT_EQ(r.logprobs.size(), 6u);
    }
  }
  scheduler.stop();
  int argmax = 0, draws = 0, read = 0;
  Rng seed99(99);
  seed99.uniform();  // the job's first token, sampled from its prefill's row
  for (const auto& [fed, pick] : s.picked_rows) {
    const TokenPick::Kind want = fed / 10 == 0   ? TokenPick::Kind::kArgmax
                                 : fed / 10 == 3 ? TokenPick::Kind::kDraw
                                                 : TokenPick::Kind::kLogits;
    EXPECT_EQ(pick.kind, want) << "the row fed " << fed;
    if (pick.kind == TokenPick::Kind::kDraw) {
      EXPECT_EQ(pick.draw.u, seed99.uniform()) << "the row fed " << fed;
      EXPECT_EQ(pick.draw.top_k, 1);
      EXPECT_EQ(pick.draw.temperature, 0.7f);
    }
    (want == TokenPick::Kind::kArgmax ? argmax : want == TokenPick::Kind::kDraw ? draws : read)++;
  }
  EXPECT_EQ(argmax, 5);  // the greedy job's 5 steps after its prefill
  EXPECT_EQ(draws, 5);
  EXPECT_EQ(read, 3 * 5);

  // -1 from the batch's argmax (a NaN row) fails that job with the sampler's NaN error.
  Script n;
  n.device_picks = true;
  n.nan_after = 3;
  BatchScheduler nan_scheduler(scripted(n), c, nullptr, 64, 2);
  auto ok = nan_scheduler.submit(job({10}, 4));
  try {
    nan_scheduler.submit(job({1}, 4))->result();
    ADD_FAILURE() << "NaN logits gave a result";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ok->result().tokens, counting(11, 4));
}

// Rows of random logits that depend on the token fed (the same in a batch and alone).
std::vector<float> random_row(int32_t last, size_t vocab) {
  Rng rng(uint64_t(last) * 7919 + 3);
  std::vector<float> r(vocab);
  for (float& v : r) v = rng.normal() * 2.5f;
  return r;
}

// A batch of random_row rows that draws its kDraw rows itself (pick_on_host, as the GPU
// batch does on the device).
class DrawingBatch final : public BatchDecoder {
 public:
  DrawingBatch(int slots, int vocab, std::atomic<int>& draws) : draws_(draws), busy_(size_t(slots), false), vocab_(vocab) {}
  int slots() const override { return int(busy_.size()); }
  int vocab() const override { return vocab_; }
  std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int) override {
    busy_.at(size_t(slot)) = true;
    return random_row(prompt.back(), size_t(vocab_));
  }
  std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) override {
    rows_.clear();
    for (size_t i = 0; i < slots.size(); ++i) {
      EXPECT_TRUE(busy_.at(size_t(slots[i])));
      const std::vector<float> r = random_row(ids[i], size_t(vocab_));
      rows_.insert(rows_.end(), r.begin(), r.end());
    }
    return rows_;
  }
  std::span<const float> step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                   std::span<const TokenPick> picks, std::span<int32_t> tokens) override {
    const std::span<const float> rows = step(slots, ids);
    const size_t v = size_t(vocab_);
    for (size_t i = 0; i < slots.size(); ++i) {
      if (picks[i].kind == TokenPick::Kind::kDraw) ++draws_;
      if (picks[i].kind != TokenPick::Kind::kLogits) tokens[i] = pick_on_host(rows.subspan(i * v, v), picks[i]);
    }
    return rows;
  }
  bool draws_on_device() const override { return true; }
  kv::MemoryReport memory(int) const override { return {}; }
  void release(int slot) override { busy_.at(size_t(slot)) = false; }

 private:
  std::atomic<int>& draws_;  // kDraw rows picked, over the batch's life
  std::vector<bool> busy_;
  int vocab_;
  std::vector<float> rows_;
};

// Seeded sampling jobs stepped together in a batch that draws their rows itself give
// the tokens that each job gives alone on a decoder whose rows the host samples: the
// uniforms go to the draws in the seed's order whatever the batch's make-up.
TEST(BatchScheduler, BatchDrawsFollowEachJobsSeed) {
  model::ModelConfig c = scripted_config();
  c.vocab_size = 3000;
  struct HostRows final : Decoder {
    std::vector<float> prefill(std::span<const int32_t> p) override { return random_row(p.back(), 3000); }
    std::vector<float> step(int32_t id) override { return random_row(id, 3000); }
    kv::MemoryReport memory() const override { return {}; }
  };
  std::vector<BatchJob> jobs;
  for (int j = 0; j < 7; ++j) {
    jobs.push_back(job({int32_t(100 + j)}, 12 + 3 * j));
    SamplingParams& sp = jobs.back().options.sampling;
    sp.temperature = j == 6 ? 0.0f : 0.6f + 0.2f * float(j);
    sp.top_k = j == 2 ? 30 : 0;
    sp.top_p = j == 3 ? 0.8f : 1.0f;
    sp.min_p = j == 4 ? 0.1f : 0.0f;
    sp.presence_penalty = j == 5 ? 0.7f : 0.0f;  // sampled on the host from its row
    sp.seed = 1000 + uint64_t(j);
  }
  std::atomic<int> draws{0};
  BatchDecoderFactory make = [&draws](const kv::MethodConfig&, int, int slots) -> std::unique_ptr<BatchDecoder> {
    return std::make_unique<DrawingBatch>(slots, 3000, draws);
  };
  BatchScheduler scheduler(make, c, nullptr, 64, 3);  // fewer slots than jobs: they come and go
  std::vector<std::shared_ptr<BatchTicket>> tickets;
  for (const BatchJob& j : jobs) tickets.push_back(scheduler.submit(j));
  for (size_t j = 0; j < jobs.size(); ++j) {
    HostRows alone;
    const GenerationResult want = generate_with(alone, c, nullptr, jobs[j].prompt, jobs[j].options, 64);
    const GenerationResult got = tickets[j]->result();
    EXPECT_EQ(got.tokens, want.tokens) << "job " << j;
    EXPECT_EQ(int(got.tokens.size()), jobs[j].options.max_tokens) << "job " << j;
  }
  scheduler.stop();
  // Jobs 0-4 drew every token after their first on the batch.
  int expected = 0;
  for (int j = 0; j < 5; ++j) expected += jobs[size_t(j)].options.max_tokens - 1;
  EXPECT_EQ(draws.load(), expected);
}

// Prompts the KV memory cannot take beside the running jobs wait for one to end; one
// that does not fit alone fails with the memory error.
TEST(BatchScheduler, PromptsWaitForMemory) {
  Script s;
  s.memory_slots = 2;
  s.memory_tokens = 20;
  const model::ModelConfig c = scripted_config();
  BatchScheduler scheduler(scripted(s), c, nullptr, 64, 4);
  std::vector<std::shared_ptr<BatchTicket>> t;
  for (int j = 0; j < 6; ++j) t.push_back(scheduler.submit(job({int32_t(j)}, 10)));
  for (int j = 0; j < 6; ++j) EXPECT_EQ(t[size_t(j)]->result().tokens, counting(j + 1, 10)) << j;
  const BatchScheduler::Stats st = scheduler.stats();
  EXPECT_EQ(st.max_rows, 2);
  EXPECT_GE(st.memory_waits, 1);
  EXPECT_THROW(scheduler.submit(job(std::vector<int32_t>(30, 1), 2))->result(), zc::OutOfMemory);
  EXPECT_EQ(scheduler.submit(job({1}, 2))->result().tokens, counting(2, 2));
}

TEST(BatchScheduler, StopEndsRunningAndWaitingJobs) {
  Script s;
  const model::ModelConfig c = scripted_config();
  auto scheduler = std::make_unique<BatchScheduler>(scripted(s), c, nullptr, 64, 1);
  auto running = scheduler->submit(job({1}, -1));
  std::string text;
  ASSERT_TRUE(running->wait_text(&text));
  auto waiting = scheduler->submit(job({2}, 5, "kivi2"));
  scheduler->stop();
  EXPECT_EQ(running->result().stop_reason, "cancelled");
  EXPECT_THROW(waiting->result(), zc::Error);
  EXPECT_THROW(scheduler->submit(job({1}, 1)), zc::Error);
  scheduler.reset();  // a second stop (the destructor) is harmless
  EXPECT_EQ(s.prefills, s.releases);
}

}  // namespace
}  // namespace zc::engine
