// The node core's random source: SplitMix64, with unbiased bounded draws done here rather than
// by std::uniform_int_distribution, whose algorithm differs between standard libraries. The same
// seed gives the same choices on every platform, which the swarm simulator's traces rely on.
#pragma once

#include <cstdint>

namespace noloco::node {

class CoreRng {
 public:
  explicit CoreRng(uint64_t seed = 0) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0 (rejection of the biased tail).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace noloco::node
