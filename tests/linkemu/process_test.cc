// linkemu as a child process: it serves the topology file, cuts a link on SIGHUP, keeps its
// links when a reloaded file is bad, and exits 0 on SIGTERM. Waits have limits that only stop a
// broken test from hanging; the one time assertion is the configured delay, a lower bound.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "tests/linkemu/loopback.h"

using namespace noloco::linkemu;
using namespace noloco::linkemu::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class LinkemuProc {
 public:
  LinkemuProc(const std::string& topology, const std::string& log) : log_(log) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 2);
      execl(LINKEMU_BIN, "linkemu", "--topology", topology.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
  }
  ~LinkemuProc() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }

  // The "proxy NAME IP:PORT" lines printed before "linkemu ready".
  std::map<std::string, Endpoint> wait_ready() {
    std::map<std::string, Endpoint> eps;
    std::string line;
    char c;
    pollfd p{out_, POLLIN, 0};
    while (poll(&p, 1, kIoTimeoutMs) == 1 && read(out_, &c, 1) == 1) {
      if (c != '\n') {
        line += c;
        continue;
      }
      if (line == "linkemu ready") return eps;
      std::istringstream in(line);
      std::string word, name, addr;
      if (in >> word >> name >> addr && word == "proxy") {
        const auto colon = addr.rfind(':');
        eps[name] = {addr.substr(0, colon), static_cast<uint16_t>(std::stoi(addr.substr(colon + 1)))};
      }
      line.clear();
    }
    return {};
  }

  bool wait_log(const std::string& part) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
    while (std::chrono::steady_clock::now() < until) {
      std::ifstream in(log_);
      std::stringstream all;
      all << in.rdbuf();
      if (all.str().find(part) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  void signal(int sig) { kill(pid_, sig); }
  int wait_exit() {
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int out_ = -1;
};

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

std::string topology(uint16_t b_port, const std::string& links) {
  return R"({"nodes": [
    {"name": "a", "listen": "127.0.1.1:1", "proxy": "127.0.2.1:0"},
    {"name": "b", "listen": "127.0.1.2:)" + std::to_string(b_port) + R"(", "proxy": "127.0.2.2:0"}],
    "default": {"delay_ms": 20},
    "links": {)" + links + "}}";
}

// One byte there and back through the proxy; true when it came back.
bool echo_once(int fd) {
  uint8_t b = 9, r = 0;
  return write_all(fd, &b, 1) && read_some(fd, &r, 1) == 1 && r == 9;
}

}  // namespace

TEST_CASE("linkemu cuts a link on SIGHUP, keeps its links on a bad file and exits on SIGTERM", "[linkemu][process]") {
  EchoServer echo("127.0.1.2");
  const fs::path dir = fs::temp_directory_path() / ("linkemu_process_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path topo = dir / "topology.json";
  write_file(topo, topology(echo.port, ""));
  LinkemuProc proc(topo.string(), (dir / "linkemu.log").string());
  auto eps = proc.wait_ready();
  REQUIRE(eps.count("b") == 1);
  CHECK(eps["b"].ip == "127.0.2.2");
  CHECK(eps["b"].port != 0);

  int fd = dial("127.0.1.1", eps["b"]);
  REQUIRE(fd >= 0);
  const auto start = std::chrono::steady_clock::now();
  CHECK(echo_once(fd));
  CHECK(std::chrono::steady_clock::now() - start >= 40ms);  // 20 ms each way

  write_file(topo, topology(echo.port, R"("a<->b": {"down": true})"));
  proc.signal(SIGHUP);
  uint8_t buf[4];
  CHECK(read_some(fd, buf, sizeof buf) <= 0);  // the cut resets the open connection
  close(fd);
  CHECK(proc.wait_log("reload: 2 link directions changed, 2 down"));
  int refused = dial("127.0.1.1", eps["b"]);
  if (refused >= 0) {
    CHECK_FALSE(echo_once(refused));
    close(refused);
  }

  write_file(topo, "{ not json");
  proc.signal(SIGHUP);
  CHECK(proc.wait_log("reload refused"));
  int still_cut = dial("127.0.1.1", eps["b"]);  // the bad file changed nothing
  if (still_cut >= 0) {
    CHECK_FALSE(echo_once(still_cut));
    close(still_cut);
  }
  CHECK(echo.accepted == 1);

  write_file(topo, topology(echo.port, ""));
  proc.signal(SIGHUP);
  CHECK(proc.wait_log("reload: 2 link directions changed, 0 down"));
  int healed = dial("127.0.1.1", eps["b"]);
  REQUIRE(healed >= 0);
  CHECK(echo_once(healed));
  close(healed);

  proc.signal(SIGTERM);
  CHECK(proc.wait_exit() == 0);
  fs::remove_all(dir);
}
