#include "p2p/host_tools.h"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <csignal>

#include "common/log.h"
#include "p2p/ping.h"
#include "p2p/time_service.h"

namespace noloco::p2p {
namespace {

// Puts the failure class first so a user sees it at a glance.
Status explain(const Status& st) {
  switch (st.code()) {
    case StatusCode::kPermissionDenied:
      return Status(st.code(), "peer id mismatch: " + st.message());
    case StatusCode::kTimeout:
      return Status(st.code(), "timeout: " + st.message());
    case StatusCode::kUnsupported:
      return Status(st.code(), "protocol not supported: " + st.message());
    default:
      break;
  }
  if (st.message().rfind("handshake failed", 0) == 0 || st.message().rfind("unreachable", 0) == 0) return st;
  return Status(st.code(), "failed: " + st.message());
}

// Reserves on options.reserve_on now and again at half the granted lifetime. The first failure
// closes the host (ending io.run) with `result` set; later ones are logged and retried. Returns
// the refresh timer: cancelling it (on a signal) stops the refreshes, so io.run can return.
std::shared_ptr<asio::steady_timer> reserve_and_refresh(asio::io_context& io, const std::shared_ptr<Host>& host,
                                                        const ListenToolOptions& options, Status& result) {
  auto timer = std::make_shared<asio::steady_timer>(io);
  auto step = std::make_shared<std::function<void(bool)>>();
  std::weak_ptr<Host> weak = host;
  *step = [&options, &result, weak, timer, weak_step = std::weak_ptr(step)](bool first) {
    auto h = weak.lock();
    auto next = weak_step.lock();
    if (!h || !next) return;
    // The pending callback, then the timer's handler, hold the next step (no other owner).
    h->reserve_relay(*options.reserve_on, [&options, &result, weak, timer, next, first](Result<relay::ReservationGrant> g) {
      auto h2 = weak.lock();
      if (!h2) return;
      if (!g.ok()) {
        if (first) {
          result = g.status().context("reserve on " + options.reserve_on->to_string());
          h2->close();
          return;
        }
        NLOG_WARN("relay: refreshing the reservation failed: {}", g.status().to_string());
      } else if (first && options.on_reserved) {
        auto addr = Multiaddr::parse(options.reserve_on->to_string() + "/p2p-circuit/p2p/" + h2->peer_id().to_string());
        if (addr.ok()) options.on_reserved(*addr);
      }
      if (timer->expiry() == asio::steady_timer::time_point::min()) return;  // stopped meanwhile
      const int64_t left = g.ok() ? static_cast<int64_t>(g->reservation.expire_unix_s) - unix_time_seconds() : 60;
      timer->expires_after(std::chrono::seconds(std::max<int64_t>(left / 2, 10)));
      timer->async_wait([next](const asio::error_code& ec) {
        if (!ec) (*next)(false);
      });
    });
  };
  (*step)(true);
  return timer;
}

// Ends the refreshes of reserve_and_refresh (a pending request sees the marker and stops).
void stop_refresh(const std::shared_ptr<asio::steady_timer>& timer) {
  if (!timer) return;
  timer->cancel();
  timer->expires_at(asio::steady_timer::time_point::min());
}

// Connects to options.autonat_ask, waits for its identify, then asks it for a dial back. A
// failed connection closes the host with `result` set.
void ask_autonat(const std::shared_ptr<Host>& host, const ListenToolOptions& options, Status& result) {
  auto asked = std::make_shared<bool>(false);
  auto target = std::make_shared<std::optional<PeerId>>();
  std::weak_ptr<Host> weak = host;
  auto ask = [&options, weak, asked] {
    auto h = weak.lock();
    if (!h || *asked) return;
    *asked = true;
    h->check_reachability([&options](autonat::ReachabilityStatus st) {
      if (options.on_reachability) options.on_reachability(st);
    });
  };
  host->set_identify_listener([ask, target](const PeerId& p, const IdentifyInfo&) {
    if (*target && **target == p) ask();
  });
  host->connect(*options.autonat_ask, [&options, &result, weak, ask, target](Result<PeerId> r) {
    auto h = weak.lock();
    if (!h) return;
    if (!r.ok()) {
      result = r.status().context("autonat: connect to " + options.autonat_ask->to_string());
      h->close();
      return;
    }
    *target = *r;
    if (h->peer_info(*r)) ask();  // identify already arrived
  });
}

// Polls (every 50 ms, up to `left`) for a direct connection to `peer`; done gets its address.
void wait_for_direct(asio::io_context& io, const std::shared_ptr<Host>& host, const PeerId& peer, Duration left,
                     std::function<void(Result<Multiaddr>)> done) {
  if (host->is_directly_connected(peer)) {
    auto addr = host->connected_addr(peer);
    if (addr) return done(*addr);
  }
  if (left <= Duration::zero()) return done(Status(StatusCode::kTimeout, "no direct connection to " + peer.to_string()));
  auto timer = std::make_shared<asio::steady_timer>(io);
  const Duration step = std::chrono::milliseconds(50);
  timer->expires_after(step);
  std::weak_ptr<Host> weak = host;
  timer->async_wait([&io, weak, timer, peer, left, step, done](const asio::error_code& ec) {
    auto h = weak.lock();
    if (ec || !h) return;
    wait_for_direct(io, h, peer, left - step, done);
  });
}

}  // namespace

Status run_listen_tool(const Identity& identity, const ListenToolOptions& options) {
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<Host> host, Host::create(io, identity, options.host));
  NOLOCO_ASSIGN_OR_RETURN(Multiaddr bound, host->listen(options.listen));
  std::shared_ptr<asio::steady_timer> refresh;
  timeproto::serve_time(*host);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    if (options.on_stopping) options.on_stopping(*host);
    stop_refresh(refresh);  // a pending refresh timer would keep io.run going until it fires
    host->close();  // GoAway to every peer; io.run() returns once the goodbyes are written
  });
  if (options.on_listening) options.on_listening(bound);
  Status result;
  if (options.reserve_on) refresh = reserve_and_refresh(io, host, options, result);
  if (options.autonat_ask) ask_autonat(host, options, result);
  try {
    io.run();
  } catch (const std::exception& e) {
    return internal_error(std::string("listen: ") + e.what());
  }
  return result;
}

Status run_ping_tool(const Identity& identity, const PingToolOptions& options) {
  if (options.count < 1) return invalid_argument("ping: --count must be at least 1");
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<Host> host, Host::create(io, identity, options.host));
  if (options.listen) NOLOCO_RETURN_IF_ERROR(host->listen(*options.listen).status());
  Status result;
  bool finished = false;
  PeerId peer;
  int seq = 0;
  auto finish = [&](Status st) {
    if (finished) return;
    finished = true;
    result = std::move(st);
    host->close();
  };
  std::function<void()> next;
  next = [&] {
    if (seq == options.count) return finish(Status::Ok());
    ++seq;
    host->ping(peer, [&](Result<Duration> r) {
      if (!r.ok()) return finish(explain(r.status()));
      if (options.on_reply) options.on_reply(peer, seq, *r);
      next();
    });
  };
  host->set_identify_listener([&](const PeerId& p, const IdentifyInfo& info) {
    if (options.on_identify) options.on_identify(p, info);
  });
  host->connect(options.target, [&](Result<PeerId> r) {
    if (!r.ok()) return finish(explain(r.status()));
    peer = *r;
    if (options.wait_direct <= Duration::zero()) return next();
    wait_for_direct(io, host, peer, options.wait_direct, [&](Result<Multiaddr> direct) {
      if (!direct.ok()) return finish(explain(direct.status()));
      if (options.on_direct) options.on_direct(*direct);
      next();
    });
  });
  try {
    io.run();
  } catch (const std::exception& e) {
    return internal_error(std::string("ping: ") + e.what());
  }
  if (!finished) return internal_error("ping: stopped without a result");
  return result;
}

}  // namespace noloco::p2p
