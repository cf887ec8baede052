// A `noloco run --json` child process for multi-process tests: its stdout is read on a thread
// (first line: its address; then one JSON event per line), and the test waits for conditions on
// the events. Waits have a generous limit that only guards against a hang: the assertions never
// depend on how fast the machine is.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

// Hang guards stretch in sanitizer builds, where nodes run several times slower: the four-node
// swarm test took 311 s under ASan, and under TSan ran out of its 240 s wait for `done` beside
// another swarm test (2026-12-05). tests/node/CMakeLists.txt sets 3 for those builds.
#ifndef NOLOCO_TEST_WAIT_SCALE
#define NOLOCO_TEST_WAIT_SCALE 1
#endif

namespace noloco::test {

class NodeProc {
 public:
  using json = nlohmann::json;

  // Starts NOLOCO_BIN with `args`; stderr goes to `log_path`.
  NodeProc(const std::vector<std::string>& args, const std::string& log_path) {
    int out_pipe[2];
    if (pipe(out_pipe) != 0) std::abort();
    const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out_pipe[1], 1);
      if (log_fd >= 0) dup2(log_fd, 2);
      close(out_pipe[0]);
      setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
      std::vector<std::string> copy = args;
      std::string bin = NOLOCO_BIN;
      std::vector<char*> argv{bin.data()};
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out_pipe[1]);
    if (log_fd >= 0) close(log_fd);
    reader_ = std::thread([this, fd = out_pipe[0]] { read_loop(fd); });
  }
  ~NodeProc() {
    if (!exited()) kill(SIGKILL);
    wait_exit(std::chrono::seconds(30));
    if (reader_.joinable()) reader_.join();
  }
  NodeProc(const NodeProc&) = delete;
  NodeProc& operator=(const NodeProc&) = delete;

  void kill(int sig) { ::kill(pid_, sig); }

  // Waits until pred(events) is true or the process has closed stdout; returns pred's value.
  bool wait_for(const std::function<bool(const std::vector<json>&)>& pred,
                std::chrono::seconds limit = std::chrono::seconds(240 * NOLOCO_TEST_WAIT_SCALE)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, limit, [&] { return pred(events_) || eof_; });
    return pred(events_);
  }
  std::string address() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(120), [&] { return !first_line_.empty() || eof_; });
    return first_line_;
  }
  // Exit code, or -signal; waits for the process (up to `limit`).
  int wait_exit(std::chrono::seconds limit = std::chrono::seconds(240)) {
    if (exited_) return code_;
    const auto until = std::chrono::steady_clock::now() + limit;
    int st = 0;
    while (true) {
      const pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    exited_ = true;
    code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    if (reader_.joinable()) reader_.join();
    return code_;
  }
  bool exited() const { return exited_; }
  std::vector<json> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<json> events_of(const std::string& kind) {
    std::vector<json> out;
    for (auto& e : events())
      if (e.value("event", "") == kind) out.push_back(e);
    return out;
  }

  static bool has(const std::vector<json>& evs, const std::string& kind) {
    for (const auto& e : evs)
      if (e.value("event", "") == kind) return true;
    return false;
  }
  static int64_t max_outer(const std::vector<json>& evs) {
    int64_t m = -1;
    for (const auto& e : evs)
      if (e.value("event", "") == "outer") m = std::max<int64_t>(m, e.value("outer_step", int64_t{0}));
    return m;
  }

 private:
  void read_loop(int fd) {
    FILE* f = fdopen(fd, "r");
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
      std::string s(line, static_cast<size_t>(n));
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      std::lock_guard lock(mu_);
      if (first_line_.empty()) {
        first_line_ = s;
      } else {
        auto j = json::parse(s, nullptr, false);
        if (!j.is_discarded()) events_.push_back(std::move(j));
      }
      cv_.notify_all();
    }
    free(line);
    fclose(f);
    std::lock_guard lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string first_line_;
  std::vector<json> events_;
  bool eof_ = false;
  bool exited_ = false;
  int code_ = 0;
};

}  // namespace noloco::test
