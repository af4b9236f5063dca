// Seeds of generated items: item i of a task draws from its own stream,
// seed = hash(base seed, task name, i), so an item's prompt does not depend on the
// method, on the order of the run, or on how many other items there are.
#pragma once
#include <cstdint>
#include <string_view>

namespace zc::eval {

// SplitMix64's finalizer (Steele et al., "Fast splittable pseudorandom number
// generators", 2014): a bijective mix of 64 bits.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a of the task name, mixed with the base seed and then the index.
inline uint64_t item_seed(uint64_t base_seed, std::string_view task, int64_t index) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : task) h = (h ^ c) * 0x100000001B3ull;
  return mix64(mix64(mix64(base_seed) ^ h) ^ uint64_t(index));
}

}  // namespace zc::eval
