// Loopback helpers for the linkemu tests: plain sockets bound to a chosen source IP, and an echo
// server that plays a node. Every wait has a limit that only stops a broken test from hanging.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tools/linkemu/topology.h"

namespace noloco::linkemu::test {

inline constexpr int kIoTimeoutMs = 30000;  // only stops a broken test from hanging

inline sockaddr_in addr_of(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A plain TCP connection from `source_ip` to `to`, or -1.
inline int dial(const std::string& source_ip, const Endpoint& to) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src = addr_of(source_ip, 0), dst = addr_of(to.ip, to.port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads up to n bytes; returns the count, 0 at EOF, -1 on error (reset) or after the timeout.
inline ssize_t read_some(int fd, uint8_t* buf, size_t n) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, kIoTimeoutMs) != 1) return -1;
  return recv(fd, buf, n, 0);
}

inline bool write_all(int fd, const uint8_t* buf, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    buf += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// Node b: echoes every connection until EOF. Counts the connections it accepted.
struct EchoServer {
  int fd = -1;
  uint16_t port = 0;
  std::atomic<int> accepted{0};
  std::thread thread;
  std::vector<std::thread> workers;

  explicit EchoServer(const std::string& ip) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = addr_of(ip, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0) std::abort();
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      for (;;) {
        int c = accept(fd, nullptr, nullptr);
        if (c < 0) return;
        ++accepted;
        workers.emplace_back([c] {
          uint8_t buf[65536];
          for (ssize_t n; (n = read_some(c, buf, sizeof buf)) > 0;) {
            if (!write_all(c, buf, static_cast<size_t>(n))) break;
          }
          shutdown(c, SHUT_WR);
          close(c);
        });
      }
    });
  }
  ~EchoServer() {
    shutdown(fd, SHUT_RDWR);
    close(fd);
    thread.join();
    for (auto& w : workers) w.join();
  }
};

}  // namespace noloco::linkemu::test
