// libgomp reads OMP_WAIT_POLICY once, in its library constructor, before main, and has no call to
// change it later; setting the variable and exec'ing ourselves again is the only way to choose it
// from inside. Its default spins idle workers after every parallel region, and on a small machine
// those spinning threads take the cores away from OpenBLAS's own thread pool, which does the
// matrix products: 306 ms per training step of the `small` preset with 2 threads spinning, 112 ms
// passive (docs/benchmarks.md). The cost is one more program start (about 0.7 s) per training run.
#include "cli/openmp_policy.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/errno_text.h"
#include "common/log.h"

namespace noloco::cli {

void reexec_with_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  NLOG_DEBUG("restarting with OMP_WAIT_POLICY=PASSIVE (spinning OpenMP workers starve OpenBLAS's threads)");
  ::execv("/proc/self/exe", argv);
  NLOG_WARN("could not restart with OMP_WAIT_POLICY=PASSIVE ({}); training goes on with OpenMP's spinning "
            "default, which can be several times slower on a small machine",
            errno_text(errno));
}

}  // namespace noloco::cli
