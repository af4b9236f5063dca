// The synthetic task texts of tools/train/tasks.py (TaskGen.lines, passkey, kv,
// vartrack with one question each), written with zc::Rng draws.
#include "eval/prompts.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace zc::eval {
namespace {

template <typename T>
const T& choice(Rng& rng, const std::vector<T>& v) {
  return v[size_t(rng.integer(0, int64_t(v.size()) - 1))];
}

std::string hex8(Rng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(8, '0');
  for (char& c : s) c = kHex[rng.integer(0, 15)];
  return s;
}

// Cuts s to at most n bytes without splitting a UTF-8 sequence (tasks.py slices by
// characters; the garbage filler is ASCII, where the two agree).
std::string utf8_prefix(const std::string& s, size_t n) {
  if (n >= s.size()) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// TaskGen._brown_span over one list of paragraphs: consecutive paragraphs from a random
// start until nchars are reached; cut to nchars when that overshoots by more than 20%.
std::string filler_span(const Filler& f, Rng& rng, int nchars) {
  std::vector<std::string> out;
  long total = 0;
  while (total < nchars) {
    for (size_t i = size_t(rng.integer(0, int64_t(f.paragraphs.size()) - 1));
         i < f.paragraphs.size(); ++i) {
      out.push_back(f.paragraphs[i]);
      total += long(f.paragraphs[i].size()) + 1;
      if (total >= nchars) break;
    }
  }
  std::string s;
  for (size_t i = 0; i < out.size(); ++i) s += (i ? "\n" : "") + out[i];
  return double(s.size()) > nchars * 1.2 ? utf8_prefix(s, size_t(nchars)) : s;
}

}  // namespace

WordLists load_words(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the word lists (give --words FILE)", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  WordLists w;
  for (const char* field : {"adj", "noun"}) {
    if (!j.is_object() || !j.contains(field) || !j[field].is_array() || j[field].empty())
      fail("{}: field '{}' must be a non-empty array of words", path, field);
    auto& list = std::string(field) == "adj" ? w.adj : w.noun;
    for (const auto& x : j[field]) {
      if (!x.is_string() || x.get<std::string>().empty())
        fail("{}: field '{}' holds an entry that is not a non-empty string", path, field);
      list.push_back(x.get<std::string>());
    }
  }
  return w;
}

Filler garbage_filler() { return Filler{{std::string(kPasskeyGarbage)}}; }

Filler load_filler(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the filler text", path);
  Filler f;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) f.paragraphs.push_back(line);
  }
  if (f.paragraphs.empty()) fail("{}: the filler text has no non-empty lines", path);
  return f;
}

TaskItem lines_item(const WordLists& words, Rng& rng, int n_lines) {
  if (n_lines < 1) fail("lines: the number of lines must be at least 1, got {}", n_lines);
  if (double(n_lines) > 0.5 * double(words.adj.size()) * double(words.noun.size()))
    fail("lines: {} lines need more distinct names than the word lists give", n_lines);
  std::vector<std::string> keys;
  std::set<std::string> seen;
  while (int(keys.size()) < n_lines) {
    std::string k = choice(rng, words.adj) + "-" + choice(rng, words.noun);
    if (seen.insert(k).second) keys.push_back(std::move(k));
  }
  std::vector<int64_t> vals;
  for (size_t i = 0; i < keys.size(); ++i) vals.push_back(rng.integer(1, 50000));
  const size_t q = size_t(rng.integer(0, n_lines - 1));
  TaskItem item;
  item.prompt = std::string(kLinesHeader);
  for (size_t i = 0; i < keys.size(); ++i)
    item.prompt += fmt::format("line {}: REGISTER_CONTENT is <{}>\n", keys[i], vals[i]);
  item.prompt += fmt::format(
      "\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {}? I need the "
      "number.",
      keys[q]);
  item.reference = fmt::format(" The <REGISTER_CONTENT> in line {} is <{}>.", keys[q], vals[q]);
  item.expected = std::to_string(vals[q]);
  return item;
}

TaskItem passkey_item(Rng& rng, int filler_chars) {
  if (filler_chars < 0) fail("passkey: filler length must be >= 0, got {}", filler_chars);
  const int64_t key = rng.integer(1, 50000);
  const size_t pre = size_t(rng.integer(0, filler_chars));
  std::string filler;
  for (int i = 0; i < 400; ++i) filler += (i ? " " : "") + std::string(kPasskeyGarbage);
  while (filler.size() < size_t(filler_chars) + 10) filler = filler + " " + filler;
  const std::string info = fmt::format("The pass key is {}. Remember it. {} is the pass key.", key, key);
  TaskItem item;
  item.prompt = fmt::format("{}\n{}\n{}\n{}\n{}", kPasskeyTask, filler.substr(0, pre), info,
                            filler.substr(pre, size_t(filler_chars) - pre), kPasskeyQuestion);
  item.reference = fmt::format(" {}.", key);
  item.expected = std::to_string(key);
  return item;
}

TaskItem kv_item(Rng& rng, int n_pairs) {
  if (n_pairs < 1) fail("kv: the number of pairs must be at least 1, got {}", n_pairs);
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (int i = 0; i < n_pairs; ++i) {
    std::string k = hex8(rng);
    if (seen.insert(k).second) keys.push_back(std::move(k));
  }
  std::vector<std::string> vals;
  for (size_t i = 0; i < keys.size(); ++i) vals.push_back(hex8(rng));
  std::string body = "{";
  for (size_t i = 0; i < keys.size(); ++i)
    body += fmt::format("{}\"{}\": \"{}\"", i ? ", " : "", keys[i], vals[i]);
  body += "}";
  const size_t q = size_t(rng.integer(0, int64_t(keys.size()) - 1));
  TaskItem item;
  item.prompt = fmt::format("{}{}\n\nKey: \"{}\"\nCorresponding value:", kKvHeader, body, keys[q]);
  item.reference = fmt::format(" \"{}\"", vals[q]);
  item.expected = vals[q];
  return item;
}

TaskItem vartrack_item(const Filler& filler, Rng& rng, int filler_chars) {
  if (filler.paragraphs.empty()) fail("vartrack: the filler has no paragraphs");
  // names = sample(a..z, randint(4, 14)), cut into chains of 1..4 names.
  std::string alphabet = "abcdefghijklmnopqrstuvwxyz";
  const int n_names = int(rng.integer(4, 14));
  for (int i = 0; i < n_names; ++i) std::swap(alphabet[size_t(i)], alphabet[size_t(rng.integer(i, 25))]);
  const std::string names = alphabet.substr(0, size_t(n_names));
  std::vector<std::string> chains;
  for (int i = 0; i < n_names;) {
    const int len = std::min(int(rng.integer(1, 4)), n_names - i);
    chains.push_back(names.substr(size_t(i), size_t(len)));
    i += len;
  }
  struct Def {
    char prev = 0;  // 0: a constant
    char op = '+';
    int d = 0;
  };
  std::array<int, 128> value{};
  std::array<Def, 128> def{};
  std::vector<std::vector<std::string>> stmts;
  for (const auto& ch : chains) {
    value[size_t(ch[0])] = int(rng.integer(0, 30));
    std::vector<std::string> st = {fmt::format("{} = {};", ch[0], value[size_t(ch[0])])};
    for (size_t k = 1; k < ch.size(); ++k) {
      const char prev = ch[k - 1], cur = ch[k];
      const int d = int(rng.integer(1, 9));
      const bool minus = value[size_t(prev)] - d >= 0 && rng.uniform() < 0.5;
      value[size_t(cur)] = value[size_t(prev)] + (minus ? -d : d);
      def[size_t(cur)] = Def{prev, minus ? '-' : '+', d};
      st.push_back(fmt::format("{} = {} {} {};", cur, prev, minus ? '-' : '+', d));
    }
    stmts.push_back(std::move(st));
  }
  // Interleave the chains at random, each chain in its own order.
  std::vector<std::string> order;
  std::vector<size_t> ptr(stmts.size(), 0);
  while (true) {
    std::vector<size_t> live;
    for (size_t j = 0; j < stmts.size(); ++j)
      if (ptr[j] < stmts[j].size()) live.push_back(j);
    if (live.empty()) break;
    const size_t j = choice(rng, live);
    order.push_back(stmts[j][ptr[j]++]);
  }
  // Filler paragraphs dropped into the n + 1 gaps around the statements.
  const size_t n = order.size();
  std::vector<std::vector<std::string>> pieces(n + 1);
  if (filler_chars > 0) {
    std::stringstream span(filler_span(filler, rng, filler_chars));
    for (std::string p; std::getline(span, p);) pieces[size_t(rng.integer(0, int64_t(n)))].push_back(p);
  }
  std::vector<std::string> body;
  for (size_t k = 0; k <= n; ++k) {
    if (!pieces[k].empty()) {
      std::string block;
      for (size_t i = 0; i < pieces[k].size(); ++i) block += (i ? "\n" : "") + pieces[k][i];
      body.push_back(std::move(block));
    }
    if (k < n) body.push_back(order[k]);
  }
  std::string text(kVartrackHeader);
  for (size_t i = 0; i < body.size(); ++i) text += (i ? "\n" : "") + body[i];

  // The question prefers the end of a chain longer than one.
  std::vector<char> cands;
  for (const auto& c : chains)
    if (c.size() > 1) cands.push_back(c.back());
  if (cands.empty())
    for (const auto& c : chains) cands.push_back(c.back());
  const std::vector<char> all(names.begin(), names.end());
  const char x = rng.uniform() < 0.8 ? choice(rng, cands) : choice(rng, all);
  std::vector<char> chain;
  char y = x;
  for (; def[size_t(y)].prev != 0; y = def[size_t(y)].prev) chain.push_back(y);
  std::string ans = " ";
  for (char c : chain)
    ans += fmt::format("{} = {} {} {}, ", c, def[size_t(c)].prev, def[size_t(c)].op, def[size_t(c)].d);
  ans += fmt::format("{} = {}", y, value[size_t(y)]);
  if (!chain.empty()) {
    ans += ", so ";
    for (size_t i = chain.size(); i-- > 0;)
      ans += fmt::format("{} = {}{}", chain[i], value[size_t(chain[i])], i ? ", " : "");
  }
  ans += fmt::format(". The answer is {}.", value[size_t(x)]);
  TaskItem item;
  item.prompt = text + fmt::format("\n\nQuestion: what is the value of {}?\nAnswer:", x);
  item.reference = ans;
  item.expected = std::to_string(value[size_t(x)]);
  return item;
}

}  // namespace zc::eval
