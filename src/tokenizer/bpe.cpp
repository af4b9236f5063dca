#include "tokenizer/bpe.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace zc::tok {

using nlohmann::json;

namespace {

std::string optional_string(const json& model, const char* key, const std::string& where) {
  const auto it = model.find(key);
  if (it == model.end() || it->is_null()) return {};
  if (!it->is_string()) zc::fail("{}: model.{} must be a string", where, key);
  return it->get<std::string>();
}

bool optional_bool(const json& model, const char* key, const std::string& where) {
  const auto it = model.find(key);
  if (it == model.end() || it->is_null()) return false;
  if (!it->is_boolean()) zc::fail("{}: model.{} must be true or false", where, key);
  return it->get<bool>();
}

}  // namespace

BpeModel::BpeModel(const json& model, const std::string& where) {
  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) zc::fail("{}: model.vocab must be an object", where);
  const auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() && dropout->is_number() && dropout->get<double>() > 0) {
    zc::fail("{}: model.dropout (BPE dropout) is not supported", where);
  }
  vocab_.reserve(vocab->size() * 2);
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      zc::fail("{}: model.vocab['{}'] must be a non-negative integer id", where, token);
    }
    vocab_[token] = static_cast<int32_t>(id.get<int64_t>());
    max_id = std::max(max_id, id.get<int64_t>());
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[static_cast<size_t>(id)] = token;
    has_id_[static_cast<size_t>(id)] = true;
  }

  prefix_ = optional_string(model, "continuing_subword_prefix", where);
  suffix_ = optional_string(model, "end_of_word_suffix", where);
  fuse_unk_ = optional_bool(model, "fuse_unk", where);
  byte_fallback_ = optional_bool(model, "byte_fallback", where);
  ignore_merges_ = optional_bool(model, "ignore_merges", where);
  const std::string unk = optional_string(model, "unk_token", where);
  if (!unk.empty()) {
    const auto it = vocab_.find(unk);
    if (it == vocab_.end()) zc::fail("{}: model.unk_token '{}' is not in model.vocab", where, unk);
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  // Merges: rank = position in the list; "a b" strings (older files) or [a, b] pairs.
  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) zc::fail("{}: model.merges must be an array", where);
  merges_.reserve(merges->size() * 2);
  std::string a, b;
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const json& m = (*merges)[rank];
    if (m.is_string()) {
      const std::string& line = m.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        zc::fail("{}: model.merges[{}] '{}' is not two tokens separated by one space", where, rank, line);
      }
      a.assign(line, 0, space);
      b.assign(line, space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      zc::fail("{}: model.merges[{}] must be \"a b\" or [\"a\", \"b\"]", where, rank);
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia == vocab_.end()) zc::fail("{}: model.merges[{}]: token '{}' is not in model.vocab", where, rank, a);
    if (ib == vocab_.end()) zc::fail("{}: model.merges[{}]: token '{}' is not in model.vocab", where, rank, b);
    if (b.size() < prefix_.size()) {
      zc::fail("{}: model.merges[{}]: '{}' is shorter than the subword prefix", where, rank, b);
    }
    a.append(b, prefix_.size());  // the merged token: a + b without its continuing prefix
    const auto in = vocab_.find(a);
    if (in == vocab_.end()) zc::fail("{}: model.merges[{}]: merged token '{}' is not in model.vocab", where, rank, a);
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_[pair_key(ia->second, ib->second)] = Merge{static_cast<uint32_t>(rank), in->second};
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[static_cast<size_t>(id)]) return nullptr;
  return &id_to_token_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {  // Llama 3: a word that is itself a token is never split
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxLen;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheWords) {
      cache_.emplace(std::string(word),
                     std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
    }
  }
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t len;  // bytes of the word it covers; 0 once merged into its left neighbour
  };
  std::vector<Symbol> symbols;
  symbols.reserve(w.size());
  auto add = [&symbols](int32_t id, size_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, static_cast<uint32_t>(len)});
  };

  // 1. One symbol per character (HF merge_word), with byte fallback and <unk>.
  int32_t pending_unk = -1;
  size_t pending_unk_len = 0;
  std::string s;
  for (size_t i = 0; i < w.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(w[i])), w.size() - i);
    const bool is_first = i == 0, is_last = i + n == w.size();
    s.clear();
    if (!is_first) s += prefix_;
    s.append(w.substr(i, n));
    if (is_last) s += suffix_;
    i += n;
    const auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      if (pending_unk >= 0) {
        add(pending_unk, pending_unk_len);
        pending_unk = -1;
      }
      add(it->second, n);
      continue;
    }
    if (byte_fallback_ &&
        std::all_of(s.begin(), s.end(), [this](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; })) {
      for (char c : s) add(byte_ids_[static_cast<unsigned char>(c)], 1);
      continue;  // (HF adds a pending <unk> only later, and so do we)
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && fuse_unk_) {
        pending_unk_len += n;
      } else {
        if (pending_unk >= 0) add(pending_unk, pending_unk_len);
        pending_unk = unk_id_;
        pending_unk_len = n;
      }
    }
    // Without an unk token, an unknown character is dropped, as in HF.
  }
  if (pending_unk >= 0) add(pending_unk, pending_unk_len);

  // 2. Merge the pair of lowest rank (then lowest position) until none is left.
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  auto later = [](const Candidate& x, const Candidate& y) {  // min-heap on (rank, pos)
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  std::vector<Candidate> heap;
  heap.reserve(symbols.size());
  auto push = [&](int32_t pos, int32_t left, int32_t right) {
    const auto it = merges_.find(pair_key(left, right));
    if (it == merges_.end()) return;
    heap.push_back(Candidate{it->second.rank, pos, it->second.new_id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) push(static_cast<int32_t>(i), symbols[i].id, symbols[i + 1].id);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol right = symbols[static_cast<size_t>(left.next)];
    // Skip a stale entry: the pair at this position changed since it was queued.
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    symbols[static_cast<size_t>(left.next)].len = 0;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    const Symbol cur = left;  // push() may not invalidate it, but copy for clarity
    if (cur.prev >= 0) push(cur.prev, symbols[static_cast<size_t>(cur.prev)].id, cur.id);
    if (cur.next >= 0) push(top.pos, cur.id, symbols[static_cast<size_t>(cur.next)].id);
  }
  for (const Symbol& sym : symbols) {
    if (sym.len != 0) out.push_back(sym.id);
  }
}

}  // namespace zc::tok
