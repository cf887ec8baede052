// Runs the training verbs with thread pools that sleep instead of spin (see openmp_policy.cc).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace noloco::cli {

// The environment variables the training verbs want and that are not set yet: OMP_WAIT_POLICY
// (PASSIVE) and OPENBLAS_THREAD_TIMEOUT (4). `lookup` reads one variable (getenv in the program);
// a value the user set, whatever it is, is kept.
std::vector<std::pair<std::string, std::string>> missing_thread_env(
    const std::function<std::optional<std::string>(const char*)>& lookup);

// Sets the missing variables and re-executes this program with the same arguments (same pid, so
// signals and pipes are unaffected); returns only if nothing needed doing or the re-exec failed
// (logged, the run goes on with the libraries' spinning defaults).
void reexec_with_thread_policy(char** argv);

}  // namespace noloco::cli
