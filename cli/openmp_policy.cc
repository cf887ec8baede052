// libgomp reads OMP_WAIT_POLICY, and OpenBLAS its OPENBLAS_THREAD_TIMEOUT, once, in their library
// constructors, before main, and neither has a call to change it later; setting the variables and
// exec'ing ourselves again is the only way to choose them from inside. libgomp's default spins
// idle workers after every parallel region, and on a small machine those spinning threads take the
// cores away from OpenBLAS's own thread pool, which does the matrix products: 306 ms per training
// step of the `small` preset with 2 threads spinning, 112 ms passive (docs/benchmarks.md).
// OpenBLAS's idle workers spin too, the other way round (below). The cost is one more program
// start (about 0.7 s) per training run.
#include "cli/openmp_policy.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/errno_text.h"
#include "common/log.h"

namespace noloco::cli {

std::vector<std::pair<std::string, std::string>> missing_thread_env(
    const std::function<std::optional<std::string>(const char*)>& lookup) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!lookup("OMP_WAIT_POLICY")) out.emplace_back("OMP_WAIT_POLICY", "PASSIVE");
  // 4 is OpenBLAS's minimum: an idle worker gives up after 2^4 cycles and sleeps on a condition
  // variable. Its default, 2^28 cycles (~0.1 s), keeps idle workers calling sched_yield between
  // matrix products, which took the cores from torch's own workers: small preset on 2 cores,
  // 5267 -> 7509 tokens/s and 0.112 -> 0.016 s system time per step (docs/benchmarks.md).
  if (!lookup("OPENBLAS_THREAD_TIMEOUT")) out.emplace_back("OPENBLAS_THREAD_TIMEOUT", "4");
  return out;
}

void reexec_with_thread_policy(char** argv) {
  const auto missing = missing_thread_env([](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
  if (missing.empty()) return;
  for (const auto& [name, value] : missing) {
    if (::setenv(name.c_str(), value.c_str(), 1) != 0) return;
    NLOG_DEBUG("restarting with {}={} (spinning idle workers take the cores from the busy ones)", name, value);
  }
  ::execv("/proc/self/exe", argv);
  NLOG_WARN("could not restart with the sleeping thread-pool settings ({}); training goes on with the "
            "spinning defaults, which can be several times slower on a small machine",
            errno_text(errno));
}

}  // namespace noloco::cli
