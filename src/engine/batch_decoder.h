// A forward pass over several sequences at once, for serving concurrent requests
// (engine/batch_scheduler.h): fixed slots, each free or holding one sequence; a slot
// takes a prompt while the others are mid-generation, and one step feeds a token to
// every busy slot (continuous batching, as vLLM and llama.cpp's server slots do). The
// GPU runner steps its slots as one batch (apps/zipcache/gpu_decoder.h), and so does the
// CPU model (cpu_batch); sequential_batch steps any decoders one after another.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/generator.h"
#include "kv/cache.h"
#include "kv/method.h"
#include "model/forward.h"

namespace zc::engine {

class BatchDecoder {
 public:
  virtual ~BatchDecoder() = default;
  virtual int slots() const = 0;
  virtual int vocab() const = 0;
  // Starts a sequence in free slot `slot` from `prompt` (at most the context); returns
  // the logits of its last token. max_new_tokens: the most tokens the slot will be fed
  // after it, for a batch with a memory budget to keep room for them (zc::OutOfMemory
  // when it cannot beside the busy slots; the slot stays free).
  virtual std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int max_new_tokens) = 0;
  // Feeds ids[i] to busy slot slots[i] (distinct) and returns their next logits, row i
  // of vocab() floats for slots[i], in the batch's own memory (the GPU batch's is pinned
  // host memory the rows are copied to), valid until the next call.
  virtual std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) = 0;
  // step() for a caller that needs only the token of some rows (engine::TokenPick):
  // picks[i] for row i; a kArgmax or kDraw row's token lands in tokens[i] (check_picked's
  // form: -1 for a NaN row, -2 for one without a finite largest logit) and its logits
  // are unspecified; kLogits rows are step()'s, at their index. The default runs step()
  // and pick_on_host; the GPU batch picks on the device and copies only kLogits rows.
  virtual std::span<const float> step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                           std::span<const TokenPick> picks, std::span<int32_t> tokens);
  // Whether step_pick draws kDraw rows where the logits are (else a caller asks rows).
  virtual bool draws_on_device() const { return false; }
  virtual kv::MemoryReport memory(int slot) const = 0;  // all layers of the slot's sequence
  // Frees the slot's sequence (its KV memory); the slot is free again.
  virtual void release(int slot) = 0;

 protected:
  // step_pick's picks and tokens are one per slot (zc::Error naming the sizes).
  static void check_pick_args(std::span<const int> slots, std::span<const TokenPick> picks,
                              std::span<int32_t> tokens);
};

// A batch decoder of `slots` slots through `method`, sequences of at most `context`
// tokens.
using BatchDecoderFactory =
    std::function<std::unique_ptr<BatchDecoder>(const kv::MethodConfig& method, int context, int slots)>;

// The CPU model's batch: one SequenceState per busy slot, and a step is one
// Model::forward over all of them (their rows stacked for the matrix products, so the
// weights are read once per step, not once per slot).
std::unique_ptr<BatchDecoder> cpu_batch(const model::Model& model, const kv::MethodConfig& method, int context,
                                        int slots);

// Slots made of single-sequence decoders from `make_decoder` (one made per prompt,
// released with its slot), stepped one after another: any backend's decoders batched
// in time only.
std::unique_ptr<BatchDecoder> sequential_batch(DecoderFactory make_decoder, const kv::MethodConfig& method,
                                               int context, int slots, int vocab);

}  // namespace zc::engine
