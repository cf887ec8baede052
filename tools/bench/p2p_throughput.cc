// Bulk-transfer throughput on loopback (a benchmark, not a test): how fast one stream moves bytes
// through our libp2p stack, against the two limits that bound it.
//
//   p2p_throughput [--mb N] [--only crypto|tcp|noloco|noloco-pnet]
//   p2p_throughput --mb N --send-to MULTIADDR    our host sends to another implementation's
//                                                bench sink (tools/interop/node.mjs listen)
//   p2p_throughput --serve-once                  our host as the sink for one transfer (node.mjs
//                                                bench-send); prints its address first
//   --dial-from IP (with --send-to), --listen MULTIADDR (with --serve-once): addresses for
//   a transfer through tools/linkemu (docs/linkemu.md)
//
// Prints one line per measurement:
//   chacha20poly1305  the single-core limit: libsodium ChaCha20-Poly1305 (IETF) encrypting
//                     Noise-sized frames (65519 B plaintext, the largest a Noise frame carries)
//   tcp               plain TCP, one connection, blocking 64 KiB writes, both ends in this process
//   noloco            our host: TCP + Noise + yamux, one stream, both ends in this process
//   noloco-pnet       the same under a pnet pre-shared key (XSalsa20 below Noise)
// MB/s are 10^6 bytes per wall-clock second; cpu s/GB is this process's user+system CPU
// (getrusage) per 10^9 bytes moved, i.e. sender and receiver together; MB per cpu-s is its
// inverse, the figure that stays meaningful when other processes share the cores.
// tools/bench/run_p2p_throughput.sh runs this and the js-libp2p pair and prints all figures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench/p2p_throughput_noloco.h"

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

struct Measure {
  Clock::time_point wall0 = Clock::now();
  double cpu0 = cpu_seconds();
  void print(const char* name, uint64_t bytes, const std::string& note) const {
    double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
    double cpu = cpu_seconds() - cpu0;
    std::printf("%-18s %8.1f MB/s  cpu %6.2f s/GB = %7.1f MB per cpu-s  (%llu MB in %.2f s%s%s)\n",
                name, double(bytes) / 1e6 / wall, cpu / (double(bytes) / 1e9),
                double(bytes) / 1e6 / cpu,
                static_cast<unsigned long long>(bytes / 1000000), wall, note.empty() ? "" : "; ",
                note.c_str());
    std::fflush(stdout);
  }
};

// One core encrypting Noise-sized frames: the ceiling for one Noise connection's sender.
int bench_chacha(uint64_t bytes) {
  constexpr size_t kFrame = 65535 - crypto_aead_chacha20poly1305_ietf_ABYTES;
  std::vector<uint8_t> key(crypto_aead_chacha20poly1305_ietf_KEYBYTES, 7);
  std::vector<uint8_t> plain(kFrame, 0x5a);
  std::vector<uint8_t> cipher(kFrame + crypto_aead_chacha20poly1305_ietf_ABYTES);
  uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {};
  uint64_t frames = bytes / kFrame + 1;
  Measure m;
  for (uint64_t n = 0; n < frames; ++n) {
    std::memcpy(nonce + 4, &n, sizeof n);  // Noise's nonce layout: 4 zero bytes, 64-bit counter
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(cipher.data(), &clen, plain.data(), plain.size(),
                                              nullptr, 0, nullptr, nonce, key.data());
  }
  m.print("chacha20poly1305", frames * kFrame, "encrypt only, 1 core, 65519 B frames");
  return 0;
}

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

// Plain TCP on loopback: what the kernel alone costs, without any protocol above it.
int bench_tcp(uint64_t bytes) {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 1) != 0 || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("tcp: listen");
    return 1;
  }
  uint64_t received = 0;
  std::thread receiver([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    std::vector<uint8_t> buf(256 * 1024);
    for (;;) {
      ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      received += uint64_t(r);
    }
    ::close(fd);
  });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("tcp: connect");
    return 1;
  }
  std::vector<uint8_t> chunk(64 * 1024, 0x5a);
  Measure m;
  uint64_t sent = 0;
  while (sent < bytes) {
    size_t n = size_t(std::min<uint64_t>(chunk.size(), bytes - sent));
    if (!write_all(fd, chunk.data(), n)) break;
    sent += n;
  }
  ::shutdown(fd, SHUT_WR);
  receiver.join();
  ::close(fd);
  ::close(lfd);
  if (received != bytes) {
    std::fprintf(stderr, "tcp: received %llu of %llu bytes\n", (unsigned long long)received,
                 (unsigned long long)bytes);
    return 1;
  }
  m.print("tcp", bytes, "plain TCP, 1 connection, 64 KiB writes");
  return 0;
}

int bench_noloco(uint64_t bytes, bool pnet) {
  const char* name = pnet ? "noloco-pnet" : "noloco";
  Measure m;
  auto moved = noloco::bench::transfer_over_host(bytes, pnet);
  if (!moved.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, moved.status().to_string().c_str());
    return 1;
  }
  if (*moved != bytes) {
    std::fprintf(stderr, "%s: receiver counted %llu of %llu bytes\n", name,
                 (unsigned long long)*moved, (unsigned long long)bytes);
    return 1;
  }
  m.print(name, bytes, pnet ? "TCP+pnet+Noise+yamux, 1 stream, 2 network threads"
                            : "TCP+Noise+yamux, 1 stream, 2 network threads");
  return 0;
}

int send_to(const std::string& addr, uint64_t bytes, const std::string& dial_from) {
  Measure m;
  auto moved = noloco::bench::send_to_sink(addr, bytes, dial_from);
  if (!moved.ok() || *moved != bytes) {
    std::fprintf(stderr, "send-to: %s\n",
                 moved.ok() ? ("sink counted " + std::to_string(*moved) + " bytes").c_str()
                            : moved.status().to_string().c_str());
    return 1;
  }
  m.print("noloco-send", bytes, "this process sends only");
  return 0;
}

int serve_once(const std::string& listen) {
  Measure m;  // includes the wait for the sender; MB/s here means little, cpu s/GB does
  auto moved = noloco::bench::serve_one_transfer(
      [](const std::string& addr) {
        std::printf("%s\n", addr.c_str());
        std::fflush(stdout);
      },
      listen);
  if (!moved.ok()) {
    std::fprintf(stderr, "serve-once: %s\n", moved.status().to_string().c_str());
    return 1;
  }
  m.print("noloco-recv", *moved, "this process receives only; wall includes waiting for the sender");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mb = 1024;
  std::string only;
  std::string send_addr, dial_from, listen = "/ip4/127.0.0.1/tcp/0";
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) {
      mb = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--send-to" && i + 1 < argc) {
      send_addr = argv[++i];
    } else if (a == "--serve-once") {
      serve = true;
    } else if (a == "--dial-from" && i + 1 < argc) {
      dial_from = argv[++i];
    } else if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: p2p_throughput [--mb N] [--only crypto|tcp|noloco|noloco-pnet]\n"
                   "       p2p_throughput [--mb N] --send-to MULTIADDR [--dial-from IP]\n"
                   "       p2p_throughput --serve-once [--listen MULTIADDR]\n");
      return 2;
    }
  }
  if (mb == 0 || sodium_init() < 0) {
    std::fprintf(stderr, "p2p_throughput: bad --mb or libsodium init failed\n");
    return 2;
  }
  if (serve) return serve_once(listen);
  const uint64_t bytes = mb * 1000000;
  if (!send_addr.empty()) return send_to(send_addr, bytes, dial_from);
  int rc = 0;
  if (only.empty() || only == "crypto") rc |= bench_chacha(bytes * 4);
  if (only.empty() || only == "tcp") rc |= bench_tcp(bytes);
  if (only.empty() || only == "noloco") rc |= bench_noloco(bytes, false);
  if (only.empty() || only == "noloco-pnet") rc |= bench_noloco(bytes, true);
  return rc;
}
