// Runs the training verbs with OpenMP workers that sleep instead of spin (see openmp_policy.cc).
#pragma once

namespace noloco::cli {

// When OMP_WAIT_POLICY is unset, sets it to PASSIVE and re-executes this program with the same
// arguments (same pid, so signals and pipes are unaffected); returns only if nothing needed doing
// or the re-exec failed (logged, the run goes on with the spinning default). A value the user set,
// whatever it is, is kept.
void reexec_with_passive_openmp(char** argv);

}  // namespace noloco::cli
