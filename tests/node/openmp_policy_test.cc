// The training verbs re-execute themselves with OMP_WAIT_POLICY=PASSIVE when it is unset
// (cli/openmp_policy.cc), exactly once, and keep a value the user set.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "node_test_util.h"

extern char** environ;

namespace {

struct Outcome {
  int exit_code = -1;
  std::string err;
};

// Runs a two-replica, two-step `noloco simulate` at debug log level with `policy` as the child's
// OMP_WAIT_POLICY (nullptr: absent); stderr goes to a file.
Outcome run_simulate(const char* policy, const std::string& dir) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "OMP_WAIT_POLICY=", 16) != 0) env_strings.emplace_back(*e);
  }
  if (policy != nullptr) env_strings.push_back(std::string("OMP_WAIT_POLICY=") + policy);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {NOLOCO_BIN, "--log-level", "debug", "simulate", "--replicas", "2",
                                   "--steps", "2", "--warmup", "1", "--eval-every", "2", "--eval-batches", "1",
                                   "--threads", "1", "--out", dir + "/sim.jsonl"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string err_path = dir + "/stderr.txt";
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(err_path.c_str(), "w");
    if (f == nullptr) _exit(126);
    dup2(fileno(f), 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  o.err = ss.str();
  return o;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a training verb restarts itself once with passive OpenMP workers when the policy is unset") {
  noloco::test::TempDir dir;
  const Outcome o = run_simulate(nullptr, dir.path.string());
  INFO(o.err);
  CHECK(o.exit_code == 0);
  CHECK(count(o.err, "restarting with OMP_WAIT_POLICY=PASSIVE") == 1);
}

TEST_CASE("a training verb keeps the OpenMP wait policy the user set") {
  noloco::test::TempDir dir;
  const Outcome o = run_simulate("ACTIVE", dir.path.string());
  INFO(o.err);
  CHECK(o.exit_code == 0);
  CHECK(count(o.err, "restarting with OMP_WAIT_POLICY") == 0);
}
