// The Asio adapter of DCUtR (dcutr.h) on a Host with HostOptions::hole_punch: serves
// /libp2p/dcutr (the responder, A) and, when a relayed connection we accepted is up, runs the
// initiator (B) on it: CONNECT, SYNC, then dials every address of the peer from our listen port
// at once (the timing of dcutr.h) and keeps the first direct connection that comes up. Up to
// kMaxAttempts exchanges (the spec's three); after that the peers stay relayed.
#pragma once

#include <asio/io_context.hpp>

#include <map>
#include <memory>

#include "p2p/connection.h"
#include "p2p/dcutr.h"
#include "p2p/host.h"

namespace noloco::p2p {
class HostImpl;
class HostConnection;
}  // namespace noloco::p2p

namespace noloco::p2p::holepunch {

class HolePunchService : public std::enable_shared_from_this<HolePunchService> {
 public:
  static constexpr int kMaxAttempts = 3;
  static constexpr Duration kStreamTimeout = std::chrono::seconds(10);  // for the peer's answers
  static constexpr Duration kRetryDelay = std::chrono::milliseconds(200);
  // When every dial of ours failed, how long the peer's own dial may still take to come in (its
  // Noise and yamux upgrade run after our dials gave up), checked every kPeerDialPoll.
  static constexpr Duration kPeerDialGrace = std::chrono::seconds(3);
  static constexpr Duration kPeerDialPoll = std::chrono::milliseconds(100);

  // Installs the dcutr handler and the upgrade observer on `host`.
  static std::shared_ptr<HolePunchService> start(asio::io_context& io, const std::shared_ptr<HostImpl>& host);
  HolePunchService(asio::io_context& io, std::weak_ptr<HostImpl> host) : io_(io), host_(std::move(host)) {}

  const Host::HolePunchStats& stats() const { return stats_; }

 private:
  void on_upgraded(const std::shared_ptr<HostConnection>& conn);
  void initiate(std::weak_ptr<HostConnection> relayed, PeerId peer, int attempt);
  void on_initiator_stream(std::shared_ptr<HostStream> s, std::weak_ptr<HostConnection> relayed, int attempt);
  void respond(std::shared_ptr<HostStream> s, std::shared_ptr<dcutr::Responder> core);
  // Dials all `addrs` of `peer` from our listen port; done(true), once, as soon as a direct
  // connection to the peer is up: one of our dials (others that also come up are closed), or the
  // peer's own dial arriving (on_upgraded, or already there when the punch starts; also waited
  // for kPeerDialGrace after every dial of ours failed); else done(false).
  void punch(const PeerId& peer, const std::vector<Multiaddr>& addrs, ConnectionRole role,
             std::function<void(bool)> done);
  void retry_or_fail(std::weak_ptr<HostConnection> relayed, PeerId peer, int attempt, const Status& why);
  std::vector<Multiaddr> own_addrs() const;
  void after(Duration d, std::function<void()> fn);
  // Calls done(true) as soon as a direct connection to `peer` exists, done(false) once `left` is up.
  void await_direct(const PeerId& peer, Duration left, std::function<void(bool)> done);

  // A punch in progress: our dials and the peer's inbound direct connection race to end it.
  // Before, only our dials (or the grace after they failed) ended it, and a punch the peer's dial
  // had already won was counted neither way until then (interop test, 1 run in 13).
  struct PunchRace {
    size_t left = 0;       // our dials still running
    bool won = false;      // one of our dials came up direct
    bool finished = false;
    std::function<void(bool)> done;
  };
  void finish_punch(const PeerId& peer, const std::shared_ptr<PunchRace>& race, bool ok);

  asio::io_context& io_;
  std::weak_ptr<HostImpl> host_;
  Host::HolePunchStats stats_;
  std::map<PeerId, std::shared_ptr<PunchRace>> punching_;  // by peer, while in progress
};

}  // namespace noloco::p2p::holepunch
