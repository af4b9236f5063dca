#include "kv_input.h"

#include <algorithm>

#include "core/error.h"
#include "io/safetensors.h"

namespace zc::app {

namespace {

// Accepts [H, L, d] or [1, H, L, d]; returns {H, L, d}.
std::vector<int64_t> head_shape(const io::SafetensorsFile& f, const std::string& name) {
  auto shape = f.info(name).shape;
  if (shape.size() == 4) {
    if (shape[0] != 1)
      fail("{}: tensor '{}' has batch {}; give one sequence (batch 1)", f.path(), name, shape[0]);
    shape.erase(shape.begin());
  }
  if (shape.size() != 3)
    fail("{}: tensor '{}' must be [heads, tokens, head_dim] (or with a leading batch of 1)",
         f.path(), name);
  for (auto s : shape)
    if (s <= 0) fail("{}: tensor '{}' has an empty dimension", f.path(), name);
  return shape;
}

}  // namespace

LoadedKv load_kv_file(const std::string& path) {
  io::SafetensorsFile f(path);
  for (const char* name : {"k", "v"})
    if (!f.has(name)) fail("{}: no tensor '{}' (expected k and v as [n_kv_heads, L, head_dim])", path, name);
  const auto ks = head_shape(f, "k"), vs = head_shape(f, "v");
  if (ks != vs)
    fail("{}: k is [{}, {}, {}] but v is [{}, {}, {}]", path, ks[0], ks[1], ks[2], vs[0], vs[1], vs[2]);
  LoadedKv out;
  KvInput& in = out.input;
  in.n_kv_heads = int(ks[0]), in.L = int(ks[1]), in.head_dim = int(ks[2]);
  in.n_heads = in.n_kv_heads;
  in.k = swap_outer_axes(f.to_float("k"), in.n_kv_heads, in.L, in.head_dim);
  in.v = swap_outer_axes(f.to_float("v"), in.n_kv_heads, in.L, in.head_dim);
  if (f.has("q")) {
    const auto qs = head_shape(f, "q");
    if (qs[1] != in.L || qs[2] != in.head_dim)
      fail("{}: q must be [n_heads, {}, {}] to match k", path, in.L, in.head_dim);
    if (qs[0] % in.n_kv_heads != 0)
      fail("{}: q has {} heads, not a multiple of the {} KV heads", path, qs[0], in.n_kv_heads);
    in.n_heads = int(qs[0]);
    in.q = swap_outer_axes(f.to_float("q"), in.n_heads, in.L, in.head_dim);
  }
  if (f.has("salient")) {
    const auto& info = f.info("salient");
    const auto ids = f.to_int("salient");
    size_t rows = 1;
    if (info.shape.size() == 2) {
      if (info.shape[0] != in.n_kv_heads)
        fail("{}: salient is [{}, S] but there are {} KV heads", path, info.shape[0], in.n_kv_heads);
      rows = size_t(in.n_kv_heads);
    } else if (info.shape.size() != 1) {
      fail("{}: salient must be [S] or [n_kv_heads, S]", path);
    }
    const size_t per_row = rows ? ids.size() / rows : 0;
    for (size_t r = 0; r < rows; ++r) {
      std::vector<int> list;
      for (size_t i = 0; i < per_row; ++i) {
        const int64_t t = ids[r * per_row + i];
        if (t < 0 || t >= in.L) fail("{}: salient token {} is outside [0, {})", path, t, in.L);
        list.push_back(int(t));
      }
      std::sort(list.begin(), list.end());
      if (std::adjacent_find(list.begin(), list.end()) != list.end())
        fail("{}: salient lists a token twice", path);
      out.salient.push_back(std::move(list));
    }
  }
  return out;
}

std::string kv_file_help() {
  return R"(Input file layout (safetensors; one layer of one sequence, as HF's cache holds it):
  k, v      [n_kv_heads, L, head_dim] or [1, n_kv_heads, L, head_dim]  F32/F16/BF16, keys after RoPE
  q         [n_heads, L, head_dim]  optional: needed by attention-aware methods and for
            the attention-output error (measured on the last 128 query rows)
  salient   [S] or [n_kv_heads, S]  optional integer token positions: use these as the
            salient tokens of zipcache/mikv instead of computing saliency
From a Hugging Face model: python3 tools/dump_kv.py MODEL_DIR --prompt TEXT --layer N -o kv.safetensors
(see docs/kv-files.md).
)";
}

}  // namespace zc::app
