// Helpers for tests that run the real `noloco` binary: spawn with a pipe on stdout, optionally
// SIGKILL/SIGTERM it once a given progress line appears, and collect the output.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace noloco::test {

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out, err;
  // Value of "key=" on the last "final"/"interrupted" line, empty if absent.
  std::string field(const std::string& key) const {
    const size_t line = out.rfind(key + "=");
    if (line == std::string::npos) return {};
    const size_t b = line + key.size() + 1;
    return out.substr(b, out.find_first_of(" \n", b) - b);
  }
};

// A fresh directory under the temp dir, removed by the destructor unless NOLOCO_TEST_KEEP is set
// (to read a failed run's node logs afterwards).
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "noloco-node-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    if (std::getenv("NOLOCO_TEST_KEEP")) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string sub(const std::string& name) const { return (path / name).string(); }
};

// Runs `noloco args...`. When `signal_at` is set, sends `sig` once stdout shows the line
// "step <signal_at> ..." (the child may have gone a step or two further by then). `env`, when
// given, is the child's whole environment ("NAME=value" entries) instead of ours.
inline RunResult run_noloco(const std::vector<std::string>& args, std::optional<long> signal_at = std::nullopt,
                            int sig = SIGKILL, const std::vector<std::string>* env = nullptr) {
  // stdout through a pipe (read line by line), stderr into a file so a chatty child never blocks.
  int out_pipe[2];
  if (pipe(out_pipe) != 0) std::abort();
  std::string err_path = (std::filesystem::temp_directory_path() / "noloco-node-err-XXXXXX").string();
  const int err_fd = mkstemp(err_path.data());
  if (err_fd < 0) std::abort();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_fd, 2);
    close(out_pipe[0]);
    std::vector<char*> argv;
    std::string bin = NOLOCO_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (env != nullptr) {
      std::vector<std::string> env_copy = *env;
      std::vector<char*> envp;
      for (auto& e : env_copy) envp.push_back(e.data());
      envp.push_back(nullptr);
      execve(bin.c_str(), argv.data(), envp.data());
    } else {
      execv(bin.c_str(), argv.data());
    }
    _exit(127);
  }
  close(out_pipe[1]);
  RunResult r;
  FILE* f = fdopen(out_pipe[0], "r");
  char* line = nullptr;
  size_t cap = 0;
  bool signalled = false;
  const std::string want = signal_at ? "step " + std::to_string(*signal_at) + " " : std::string();
  while (getline(&line, &cap, f) > 0) {
    r.out += line;
    if (signal_at && !signalled && std::string(line).rfind(want, 0) == 0) {
      kill(pid, sig);
      signalled = true;
    }
  }
  free(line);
  fclose(f);
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[4096];
  ssize_t n;
  lseek(err_fd, 0, SEEK_SET);
  while ((n = read(err_fd, buf, sizeof buf)) > 0) r.err.append(buf, static_cast<size_t>(n));
  close(err_fd);
  unlink(err_path.c_str());
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Starts `noloco args...` with stdout and stderr on /dev/null; returns its pid.
inline pid_t spawn_noloco(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<char*> argv;
    std::string bin = NOLOCO_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// The small, fast run every node test uses (tiny model, one thread for bit-exact CPU results).
inline std::vector<std::string> train_args(const std::string& db, long steps = 40) {
  return {"train", "--db", db, "--steps", std::to_string(steps), "--preset", "tiny", "--batch", "4",
          "--threads", "1", "--H", "5", "--warmup", "5", "--checkpoint-every", "6", "--log-every", "1",
          "--seed", "7"};
}

}  // namespace noloco::test
