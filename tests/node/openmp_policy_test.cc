// The training verbs re-execute themselves with OMP_WAIT_POLICY=PASSIVE and
// OPENBLAS_THREAD_TIMEOUT=4 when they are unset (cli/openmp_policy.cc), exactly once, and keep a
// value the user set.
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "node_test_util.h"

extern char** environ;

namespace {

// A two-replica, two-step `noloco simulate` at debug log level with `policy` as the child's
// OMP_WAIT_POLICY and `timeout` as its OPENBLAS_THREAD_TIMEOUT (nullptr: absent) and the rest of
// our environment.
noloco::test::RunResult run_simulate(const char* policy, const char* timeout, const noloco::test::TempDir& dir) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "OMP_WAIT_POLICY=", 16) != 0 && std::strncmp(*e, "OPENBLAS_THREAD_TIMEOUT=", 24) != 0) {
      env.emplace_back(*e);
    }
  }
  if (policy != nullptr) env.push_back(std::string("OMP_WAIT_POLICY=") + policy);
  if (timeout != nullptr) env.push_back(std::string("OPENBLAS_THREAD_TIMEOUT=") + timeout);
  return noloco::test::run_noloco({"--log-level", "debug", "simulate", "--replicas", "2", "--steps", "2",
                                   "--warmup", "1", "--eval-every", "2", "--eval-batches", "1", "--threads", "1",
                                   "--out", dir.sub("sim.jsonl")},
                                  std::nullopt, SIGKILL, &env);
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a training verb restarts itself once with sleeping thread pools when neither setting is given") {
  noloco::test::TempDir dir;
  const auto r = run_simulate(nullptr, nullptr, dir);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(count(r.err, "restarting with OMP_WAIT_POLICY=PASSIVE") == 1);
  CHECK(count(r.err, "restarting with OPENBLAS_THREAD_TIMEOUT=4") == 1);
}

TEST_CASE("a training verb keeps the OpenMP wait policy the user set") {
  noloco::test::TempDir dir;
  const auto r = run_simulate("ACTIVE", nullptr, dir);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(count(r.err, "restarting with OMP_WAIT_POLICY") == 0);
  CHECK(count(r.err, "restarting with OPENBLAS_THREAD_TIMEOUT=4") == 1);
}

TEST_CASE("a training verb keeps the OpenBLAS thread timeout the user set and needs no restart when both are set") {
  noloco::test::TempDir dir;
  const auto r = run_simulate("PASSIVE", "28", dir);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(count(r.err, "restarting with") == 0);
}
