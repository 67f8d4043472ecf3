// Seeded 64-bit generator for the replay sampler: xoshiro256** seeded by splitmix64.
// Every draw is made on the calling thread, so batches do not depend on num_threads.
// amago_fast/replay/reference.py reimplements the same generator in pure Python.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

namespace amago_fast {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) w = splitmix64(x);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Unbiased integer in [0, n), n >= 1: reject the low 2^64 mod n values, then reduce.
  // Portable (no 128-bit multiply) and simple to mirror exactly in Python.
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;  // == 2^64 mod n
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }

  std::array<uint64_t, 4> state() const { return s_; }
  // The all-zero state is xoshiro's one fixed point (it would draw 0 forever).
  void set_state(const std::array<uint64_t, 4>& s) {
    if ((s[0] | s[1] | s[2] | s[3]) == 0)
      throw std::invalid_argument(
          "rng_state must not be all zero (xoshiro256** would only draw 0)");
    s_ = s;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

}  // namespace amago_fast
