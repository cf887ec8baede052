// Child processes of `noloco demo`: fork/exec with stdout on a pipe and stderr in a log file,
// a poll loop over the pipes, signal forwarding and reaping.
#include "cli/demo_swarm.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace noloco::cli {
namespace {

std::atomic<bool> g_demo_stop{false};
extern "C" void on_demo_signal(int) { g_demo_stop.store(true); }

// In the forked child, before exec: only calls that are fine there.
[[noreturn]] void exec_child(const NodeLaunch& l, char** argv, int out_fd, int log_fd, int unused_fd) {
  ::dup2(out_fd, 1);
  ::dup2(log_fd, 2);
  ::close(unused_fd);
  ::close(out_fd);
  ::close(log_fd);
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);  // spinning OpenMP threads starve the other nodes
  for (const auto& [k, v] : l.env) ::setenv(k.c_str(), v.c_str(), 1);
  if (l.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(l.cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
  }
  ::execv(l.exe.c_str(), argv);
  std::perror("execv");
  ::_exit(127);
}

}  // namespace

void install_stop_signals() {
  std::signal(SIGINT, on_demo_signal);
  std::signal(SIGTERM, on_demo_signal);
  std::signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() { return g_demo_stop.load(); }

int pin_cpu_for(int i) { return static_cast<int>(i % std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))); }

struct Swarm::Child {
  std::string name;
  std::filesystem::path log;
  pid_t pid = -1;
  int out_fd = -1;
  std::string buf;                   // partial stdout line
  std::vector<std::string> pending;  // lines first_line() read past the first
  bool exited = false;
  int status = 0;
};

Swarm::Swarm() = default;

Swarm::~Swarm() {
  for (auto& k : kids_)
    if (k->out_fd >= 0) ::close(k->out_fd);
}

const std::string& Swarm::name(size_t i) const { return kids_.at(i)->name; }

Status Swarm::start(const NodeLaunch& launch) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return io_error("pipe failed");
  const int log_fd = ::open(launch.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log_fd < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return io_error("cannot create " + launch.log.string());
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(launch.exe.c_str()));
  for (const auto& a : launch.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {pipefd[0], pipefd[1], log_fd}) ::close(fd);
    return io_error("fork failed");
  }
  if (pid == 0) exec_child(launch, argv.data(), pipefd[1], log_fd, pipefd[0]);
  ::close(pipefd[1]);
  ::close(log_fd);
  auto c = std::make_unique<Child>();
  c->name = launch.name;
  c->log = launch.log;
  c->pid = pid;
  c->out_fd = pipefd[0];
  kids_.push_back(std::move(c));
  return Status::Ok();
}

// Reads whatever a child has written; returns complete lines (and the partial one at EOF).
std::vector<std::string> Swarm::read_lines(Child& c) {
  std::vector<std::string> lines;
  char buf[65536];
  const ssize_t n = ::read(c.out_fd, buf, sizeof buf);
  if (n <= 0) {
    ::close(c.out_fd);
    c.out_fd = -1;
    if (!c.buf.empty()) lines.push_back(std::exchange(c.buf, {}));
    return lines;
  }
  c.buf.append(buf, static_cast<size_t>(n));
  size_t pos;
  while ((pos = c.buf.find('\n')) != std::string::npos) {
    lines.push_back(c.buf.substr(0, pos));
    c.buf.erase(0, pos + 1);
  }
  return lines;
}

std::optional<std::string> Swarm::first_line(size_t i) {
  Child& c = *kids_.at(i);
  std::string line;
  while (line.empty()) {
    if (c.out_fd < 0 || stop_requested()) return std::nullopt;
    pollfd p{c.out_fd, POLLIN, 0};
    ::poll(&p, 1, 200);
    if (!p.revents) continue;
    for (auto& l : read_lines(c)) {
      if (line.empty()) line = std::move(l);
      else c.pending.push_back(std::move(l));  // read together with the first: pump() hands them on
    }
  }
  return line;
}

void Swarm::pump(const std::function<void(size_t, const std::string&)>& on_line) {
  for (size_t i = 0; i < kids_.size(); ++i)
    for (const auto& line : std::exchange(kids_[i]->pending, {})) on_line(i, line);
  bool forwarded_stop = false;
  while (true) {
    if (stop_requested() && !forwarded_stop) {
      std::printf("stopping the nodes (they checkpoint first)...\n");
      terminate_all();
      forwarded_stop = true;
    }
    std::vector<pollfd> fds;
    std::vector<size_t> who;
    for (size_t i = 0; i < kids_.size(); ++i)
      if (kids_[i]->out_fd >= 0) {
        fds.push_back({kids_[i]->out_fd, POLLIN, 0});
        who.push_back(i);
      }
    if (fds.empty()) break;
    ::poll(fds.data(), fds.size(), 200);
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents)
        for (const auto& line : read_lines(*kids_[who[i]])) on_line(who[i], line);
  }
}

void Swarm::terminate_all() {
  for (auto& k : kids_)
    if (!k->exited) ::kill(k->pid, SIGTERM);
}

bool Swarm::reap_all() {
  bool all_ok = true;
  for (auto& k : kids_) {
    ::waitpid(k->pid, &k->status, 0);
    k->exited = true;
    if (!WIFEXITED(k->status) || WEXITSTATUS(k->status) != 0) {
      all_ok = false;
      std::printf("%s exited abnormally (status %d); see %s\n", k->name.c_str(), k->status, k->log.c_str());
    }
  }
  return all_ok;
}

}  // namespace noloco::cli
