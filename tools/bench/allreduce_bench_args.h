// What the two all-reduce benchmark members (allreduce_bench: ours; gloo_allreduce: gloo's) share:
// their common flags and the CPU-time measurement, so both are driven and measured alike.
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <string>

namespace noloco::bench {

inline double cpu_seconds() {  // user + system, all threads of this process
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct MemberArgs {
  int rank = -1, n = 0, iters = 10, warmup = 2;
  size_t floats = 2500000;
  std::string dir;

  // Takes flag `k` with value `v` when it is a common one (std::stoi and friends throw on a bad
  // number: the benchmark is a tool, a bad flag ends it).
  bool take(const std::string& k, const std::string& v) {
    if (k == "--rank") rank = std::stoi(v);
    else if (k == "--n") n = std::stoi(v);
    else if (k == "--dir") dir = v;
    else if (k == "--floats") floats = std::stoull(v);
    else if (k == "--iters") iters = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else return false;
    return true;
  }
  bool valid() const { return rank >= 0 && n > 0 && rank < n && !dir.empty() && iters > 0; }
};

}  // namespace noloco::bench
