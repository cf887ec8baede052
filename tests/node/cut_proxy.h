// A loopback TCP proxy that cuts the first connection after it has forwarded `cut_after` bytes
// from the target to the client (both sockets shut at once, as when the serving process dies), and
// then either passes later connections through or refuses them (the target is gone for good).
// Deterministic: the cut falls at a byte count, not at a time.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace noloco::test {

class CutProxy {
 public:
  CutProxy(uint16_t target, uint64_t cut_after, bool refuse_after_cut)
      : target_(target), cut_after_(cut_after), refuse_(refuse_after_cut) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CutProxy() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) close(fd);
  }
  uint16_t port() const { return port_; }
  bool cut() const { return cut_; }

 private:
  void accept_loop() {
    int index = 0;
    while (!stop_) {
      const int in = accept(listen_fd_, nullptr, nullptr);
      if (in < 0) return;
      if (cut_ && refuse_) {
        close(in);
        continue;
      }
      const int out = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(target_);
      if (connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(out);
        close(in);
        continue;
      }
      const bool cutting = index++ == 0;
      std::lock_guard lock(mu_);
      fds_.push_back(in);
      fds_.push_back(out);
      pumps_.emplace_back([this, in, out] { pump(in, out, false); });
      pumps_.emplace_back([this, in, out, cutting] { pump(out, in, cutting); });
    }
  }
  // from -> to; when `cutting`, stops after cut_after bytes and shuts both sockets.
  void pump(int from, int to, bool cutting) {
    std::vector<char> buf(1 << 16);
    uint64_t sent = 0;
    while (true) {
      size_t want = buf.size();
      if (cutting) want = static_cast<size_t>(std::min<uint64_t>(want, cut_after_ - sent));
      const ssize_t n = want == 0 ? 0 : read(from, buf.data(), want);
      if (n <= 0) break;
      ssize_t off = 0;
      while (off < n) {
        const ssize_t w = send(to, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) break;
        off += w;
      }
      if (off < n) break;
      sent += static_cast<uint64_t>(n);
    }
    if (cutting && sent >= cut_after_) {
      cut_ = true;
      shutdown(from, SHUT_RDWR);
      shutdown(to, SHUT_RDWR);
      return;
    }
    shutdown(to, SHUT_WR);
  }

  uint16_t target_;
  uint64_t cut_after_;
  bool refuse_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false}, cut_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::vector<int> fds_;
  std::mutex mu_;
};

}  // namespace noloco::test
