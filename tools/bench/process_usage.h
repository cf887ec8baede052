// What the kernel counts for this process (Linux): CPU time split into user and system, minor
// page faults, and resident memory from /proc/self/status. The train-speed bench reports these
// per step next to tokens/s (docs/benchmarks.md); train_speed.py reads the same counters.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <cstring>

namespace noloco::bench {

struct ProcessUsage {
  double user_s = 0;    // CPU time in user space, all threads
  double system_s = 0;  // CPU time in the kernel, all threads
  long minor_faults = 0;
};

inline ProcessUsage process_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  ProcessUsage u;
  u.user_s = static_cast<double>(ru.ru_utime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_utime.tv_usec);
  u.system_s = static_cast<double>(ru.ru_stime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_stime.tv_usec);
  u.minor_faults = ru.ru_minflt;
  return u;
}

// A "VmHWM" (peak resident) or "VmRSS" (resident now) line of /proc/self/status, in MiB;
// -1 when it cannot be read.
inline double proc_status_mib(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  double mib = -1;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long kb = 0;
    if (std::strncmp(line, key, n) == 0 && line[n] == ':' && std::sscanf(line + n + 1, "%ld", &kb) == 1) {
      mib = static_cast<double>(kb) / 1024.0;
      break;
    }
  }
  std::fclose(f);
  return mib;
}

}  // namespace noloco::bench
