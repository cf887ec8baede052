// Deterministic pseudo-English text for trainer tests that need a corpus but not the real one.
#pragma once

#include <string>

#include "common/bytes.h"
#include "trainer/core/data.h"

namespace noloco::trainer::testing {

inline Bytes synthetic_text(size_t n, uint64_t seed = 1) {
  static const char* kWords[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "then ",
                                 "dog ", "ran ", "to ", "its ", "home.\n", "we ", "see ", "it "};
  Bytes out;
  out.reserve(n + 16);
  uint64_t s = seed;
  while (out.size() < n) {
    s = mix64(s);
    const std::string w = kWords[s % 16];
    out.insert(out.end(), w.begin(), w.end());
  }
  out.resize(n);
  return out;
}

}  // namespace noloco::trainer::testing
