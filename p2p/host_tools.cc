#include "p2p/host_tools.h"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>

#include "p2p/ping.h"

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

}  // namespace

Status run_listen_tool(const Identity& identity, const ListenToolOptions& options) {
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<Host> host, Host::create(io, identity, options.host));
  NOLOCO_ASSIGN_OR_RETURN(Multiaddr bound, host->listen(options.listen));
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    host->close();  // GoAway to every peer; io.run() returns once the goodbyes are written
  });
  if (options.on_listening) options.on_listening(bound);
  try {
    io.run();
  } catch (const std::exception& e) {
    return internal_error(std::string("listen: ") + e.what());
  }
  return Status::Ok();
}

Status run_ping_tool(const Identity& identity, const PingToolOptions& options) {
  if (options.count < 1) return invalid_argument("ping: --count must be at least 1");
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<Host> host, Host::create(io, identity, options.host));
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
    next();
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
