// DCUtR hole punching end to end through Linux NAT: A and B each behind its own MASQUERADE
// router, R a public relay (tests/p2p/nat_netns.sh builds the namespaces). A reaches B through
// R; B starts DCUtR on that relayed connection; both dial from their listen ports and the NATs
// let the crossing SYNs through. Checked: a direct (not relayed) connection exists on both
// sides and carries a stream. Second scenario: B's router maps ports at random (a symmetric
// NAT), so the punch must fail after three attempts and the peers stay on the relay, which
// still carries a stream.
//
// Needs root (network namespaces, iptables): otherwise it exits 77, which ctest reports as a
// skip. Each host runs on its own thread, moved into its namespace with setns() before it
// creates any socket. Standalone main (not Catch2) for that exit code.
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "p2p/host.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace std::chrono_literals;

namespace {

constexpr int kSkip = 77;
const std::string kScript = std::string(NOLOCO_SOURCE_DIR) + "/tests/p2p/nat_netns.sh";
const std::string kEcho = "/noloco-test/echo/1";

struct Failure {
  std::string what;
};
void check(bool ok, const std::string& what) {
  if (!ok) throw Failure{what};
}

// One host on its own thread inside network namespace `ns`.
class Node {
 public:
  Node(std::string ns, HostOptions opt) : ns_(std::move(ns)), work_(asio::make_work_guard(io_)) {
    std::promise<std::string> started;
    auto fut = started.get_future();
    thread_ = std::thread([this, opt, &started] {
      int fd = open(("/var/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        started.set_value("cannot enter namespace " + ns_);
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
      auto h = Host::create(io_, *Identity::generate(), opt);
      if (!h.ok()) return started.set_value(h.status().to_string());
      host_ = *h;
      started.set_value("");
      io_.run();
    });
    std::string err = fut.get();
    if (!err.empty()) {
      work_.reset();
      thread_.join();
      throw Failure{err};
    }
  }
  ~Node() {
    call([this] {
      host_->close();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs fn on the node's thread and returns its result.
  template <typename F>
  auto call(F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> p;
    asio::post(io_, [&] { p.set_value(fn()); });
    return p.get_future().get();
  }
  // Runs start(cb) on the node's thread and waits up to `limit` for cb's value.
  template <typename T, typename F>
  T await(F start, std::chrono::seconds limit = 30s) {
    auto p = std::make_shared<std::promise<T>>();
    auto fut = p->get_future();
    asio::post(io_, [p, start] { start([p](T v) { p->set_value(std::move(v)); }); });
    check(fut.wait_for(limit) == std::future_status::ready, "no answer within the test's deadline (hang)");
    return fut.get();
  }
  // Polls pred on the node's thread until it holds; false after `limit` (a hang, not a timing check).
  template <typename F>
  bool wait_for(F pred, std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (call(pred)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  Host& host() { return *host_; }

 private:
  std::string ns_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<Host> host_;
  std::thread thread_;
};

// Removes the namespaces whatever happens.
struct Namespaces {
  std::string prefix;
  bool up = false;
  Namespaces(std::string p, const std::string& mode) : prefix(std::move(p)) {
    up = true;
    const std::string cmd = kScript + " up " + prefix + " " + mode;
    check(std::system(cmd.c_str()) == 0, "could not build the namespaces: " + cmd);
  }
  ~Namespaces() {
    const std::string cmd = kScript + " down " + prefix;
    if (up && std::system(cmd.c_str()) != 0) std::fprintf(stderr, "warning: %s failed\n", cmd.c_str());
  }
};

HostOptions punching() {
  HostOptions o;
  o.hole_punch = true;
  o.dial_timeout = 3s;  // a punched SYN that a NAT drops is given up on sooner
  return o;
}

void serve_echo(Node& n) {
  n.call([&n] {
    n.host().set_handler(kEcho, [](std::shared_ptr<HostStream> s) {
      s->read_to_end(1024, [s](Result<Bytes> r) {
        if (!r.ok()) return s->reset();
        s->write(*r);
        s->close_write();
      });
    });
    return 0;
  });
}

// A stream from `from` to `to` on its best connection; returns whether that connection is
// relayed, after checking the echo.
bool echo_is_relayed(Node& from, const PeerId& to) {
  struct Got {
    Status status;
    bool relayed = false;
    Bytes echo;
  };
  const Bytes msg = to_bytes("through the NAT");
  auto got = from.await<Got>([&from, to, msg](std::function<void(Got)> cb) {
    from.host().new_stream(to, {kEcho}, [cb, msg](Result<std::shared_ptr<HostStream>> r) {
      if (!r.ok()) return cb(Got{r.status()});
      auto s = *r;
      const bool relayed = s->relayed();
      s->write(msg);
      s->close_write();
      s->read_to_end(1024, [cb, relayed](Result<Bytes> b) {
        if (!b.ok()) return cb(Got{b.status(), relayed});
        cb(Got{Status::Ok(), relayed, *b});
      });
    });
  });
  check(got.status.ok(), "echo stream failed: " + got.status.to_string());
  check(got.echo == msg, "echo returned other bytes");
  return got.relayed;
}

// Builds R, A, B; A reaches B through R. Returns the time from the relayed connection to B's
// hole-punch verdict.
void run(const std::string& prefix, bool symmetric) {
  Namespaces ns(prefix, symmetric ? "random" : "");
  HostOptions relay_opt;
  relay_opt.relay = relay::RelayOptions{};
  Node r(prefix + "-pub", relay_opt);
  Node a(prefix + "-a", punching());
  Node b(prefix + "-b", punching());
  auto r_addr = r.call([&] { return r.host().listen(*Multiaddr::parse("/ip4/198.51.100.1/tcp/0")); });
  check(r_addr.ok(), "relay listen");
  check(a.call([&] { return a.host().listen(*Multiaddr::parse("/ip4/10.13.1.2/tcp/0")).ok(); }), "A listen");
  check(b.call([&] { return b.host().listen(*Multiaddr::parse("/ip4/10.13.2.2/tcp/0")).ok(); }), "B listen");
  serve_echo(a);
  serve_echo(b);
  const PeerId rid = r.host().peer_id(), aid = a.host().peer_id(), bid = b.host().peer_id();

  // B reserves on R; A connects to R (both learn their observed address from R's identify).
  auto grant = b.await<Status>([&](auto cb) {
    b.host().reserve_relay(*r_addr, [cb](Result<relay::ReservationGrant> g) { cb(g.status()); });
  });
  check(grant.ok(), "reservation: " + grant.to_string());
  auto to_r = a.await<Status>([&](auto cb) { a.host().connect(*r_addr, [cb](Result<PeerId> p) { cb(p.status()); }); });
  check(to_r.ok(), "A to R: " + to_r.to_string());
  for (Node* n : {&a, &b}) {
    check(n->wait_for([n, rid] {
      auto info = n->host().peer_info(rid);
      return info && info->observed_addr.has_value();
    }), "identify from R");
  }
  std::printf("observed by R: A at %s, B at %s\n", a.call([&] { return a.host().peer_info(rid)->observed_addr->to_string(); }).c_str(),
              b.call([&] { return b.host().peer_info(rid)->observed_addr->to_string(); }).c_str());

  const auto circuit = *Multiaddr::parse(r_addr->to_string() + "/p2p-circuit/p2p/" + bid.to_string());
  const auto t0 = std::chrono::steady_clock::now();
  auto relayed = a.await<Status>([&](auto cb) { a.host().connect(circuit, [cb](Result<PeerId> p) { cb(p.status()); }); });
  check(relayed.ok(), "A to B through R: " + relayed.to_string());

  // B's verdict: a success, or three failed attempts.
  check(b.wait_for([&] {
    auto st = b.host().hole_punch_stats();
    return st.succeeded > 0 || st.failed >= 3;
  }, 90s), "B never finished its hole punch");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto sb = b.call([&] { return b.host().hole_punch_stats(); });
  std::printf("%s: B's hole punch: %llu attempts, %llu succeeded, %llu failed, verdict after %.0f ms\n",
              symmetric ? "symmetric NAT" : "port-preserving NAT", (unsigned long long)sb.attempts,
              (unsigned long long)sb.succeeded, (unsigned long long)sb.failed, ms);
  if (!symmetric) {
    check(sb.succeeded == 1, "B's hole punch did not succeed");
    check(a.wait_for([&] { return a.host().is_directly_connected(bid); }), "A has no direct connection to B");
    check(b.call([&] { return b.host().is_directly_connected(aid); }), "B has no direct connection to A");
    // Both ends tell the punched connection from a plain direct one (what the node reports).
    check(a.call([&] { return a.host().connection_path(bid); }) == Host::ConnectionPath::kHolePunched,
          "A does not report its connection to B as hole-punched");
    check(b.call([&] { return b.host().connection_path(aid); }) == Host::ConnectionPath::kHolePunched,
          "B does not report its connection to A as hole-punched");
    check(a.call([&] { return a.host().connection_path(rid); }) == Host::ConnectionPath::kDirect,
          "A's connection to the relay is not reported as plain direct");
    // A reached B at B's router's public address (the only way in from A's side).
    auto a_sees = a.call([&] { return a.host().connection_addrs(bid); });
    bool via_nat_b = false;
    for (const auto& m : a_sees) {
      std::printf("A's connection to B: %s\n", m.to_string().c_str());
      via_nat_b = via_nat_b || (!m.is_circuit() && m.host() == "198.51.100.3");
    }
    check(via_nat_b, "A has no connection to B's router's public address");
    check(!echo_is_relayed(a, bid), "A's stream to B went through the relay");
    check(!echo_is_relayed(b, aid), "B's stream to A went through the relay");
  } else {
    check(sb.succeeded == 0 && sb.failed == 3, "expected three failed attempts");
    check(!a.call([&] { return a.host().is_directly_connected(bid); }), "A is directly connected through a symmetric NAT");
    check(echo_is_relayed(a, bid), "A's stream to B should have used the relay");
    check(a.call([&] { return a.host().connection_path(bid); }) == Host::ConnectionPath::kRelayed,
          "A does not report its connection to B as relayed");
  }
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::printf("SKIP: needs root (network namespaces and iptables)\n");
    return kSkip;
  }
  if (std::system("command -v iptables >/dev/null && command -v ip >/dev/null") != 0) {
    std::printf("SKIP: needs ip and iptables (tools/setup.sh installs them)\n");
    return kSkip;
  }
  const std::string prefix = "dcu" + std::to_string(getpid() % 100000);  // unique per run
  try {
    run(prefix + "p", false);
    std::printf("ok: port-preserving NATs: hole punched, direct connection carries streams both ways\n");
    run(prefix + "s", true);
    std::printf("ok: symmetric NAT: punch failed after 3 attempts, peers stay relayed\n");
  } catch (const Failure& f) {
    std::printf("FAIL: %s\n", f.what.c_str());
    return 1;
  }
  return 0;
}
