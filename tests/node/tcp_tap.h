// A loopback TCP proxy that records every byte it forwards, in both directions: the "plaintext
// tap" of the swarm test. It listens on 127.0.0.1:0 at once; the target port can be set later
// (connections that arrive before that wait for it).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace noloco::test {

class TcpTap {
 public:
  TcpTap() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TcpTap() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    {
      std::lock_guard lock(mu_);
      target_port_ = -1;  // wake waiters
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) close(fd);
  }

  uint16_t port() const { return port_; }
  void set_target(uint16_t port) {
    std::lock_guard lock(mu_);
    target_port_ = port;
    cv_.notify_all();
  }
  std::string captured() {
    std::lock_guard lock(mu_);
    return captured_;
  }
  size_t connections() {
    std::lock_guard lock(mu_);
    return accepted_;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      const int in = accept(listen_fd_, nullptr, nullptr);
      if (in < 0) return;
      int target;
      {
        std::unique_lock lock(mu_);
        ++accepted_;
        fds_.push_back(in);
        cv_.wait(lock, [&] { return target_port_ != 0; });
        target = target_port_;
      }
      if (target < 0) return;
      const int out = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(target));
      if (connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(out);
        shutdown(in, SHUT_RDWR);
        continue;
      }
      std::lock_guard lock(mu_);
      fds_.push_back(out);
      pumps_.emplace_back([this, in, out] { pump(in, out); });
      pumps_.emplace_back([this, in, out] { pump(out, in); });
    }
  }
  void pump(int from, int to) {
    std::vector<char> buf(1 << 16);
    while (true) {
      const ssize_t n = read(from, buf.data(), buf.size());
      if (n <= 0) break;
      {
        std::lock_guard lock(mu_);
        captured_.append(buf.data(), static_cast<size_t>(n));
      }
      ssize_t off = 0;
      while (off < n) {
        const ssize_t w = send(to, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) break;
        off += w;
      }
      if (off < n) break;
    }
    shutdown(to, SHUT_WR);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::vector<int> fds_;
  std::mutex mu_;
  std::condition_variable cv_;
  int target_port_ = 0;
  size_t accepted_ = 0;
  std::string captured_;
};

}  // namespace noloco::test
