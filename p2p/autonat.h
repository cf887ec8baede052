// AutoNAT v1 (libp2p/specs autonat/autonat-v1.md), sans-IO: the server's decision on a DIAL
// request and the client's reachability verdict from the answers of several servers.
//
// Server: dials back only addresses whose IP is the one the request's connection came from
// (the spec's defence against using servers to flood a third party), never for a request that
// came over a relayed connection, at most max_dial_addrs addresses, and at most
// max_requests_per_peer / max_requests per window. The adapter (autonat_service.*) performs the
// dials and reports the first success, or none.
//
// Client: one vote per server (its latest answer): OK is "public" (with the address the server
// reached), E_DIAL_ERROR is "private"; every other answer (a refusal) or a failed exchange
// leaves that server's earlier vote as it was, since it says nothing new. The verdict is
// public when public votes reach min_votes and outnumber private ones, private likewise,
// otherwise unknown; the confidence is the number of votes for the verdict.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "p2p/autonat_wire.h"

namespace noloco::p2p::autonat {

struct ServerOptions {
  size_t max_dial_addrs = 4;           // addresses dialled back per request
  size_t max_requests_per_peer = 3;    // accepted requests from one peer per window
  size_t max_requests = 32;            // accepted requests from everyone per window
  Duration window = std::chrono::minutes(1);
  Duration dial_timeout = std::chrono::seconds(10);  // per dial back (the adapter's)
  Status validate() const;
};

class Server {
 public:
  explicit Server(ServerOptions options) : opt_(options) {}

  struct Decision {
    std::optional<Message> reply;  // answer now (a refusal or bad request), or
    std::vector<Multiaddr> dial;   // dial these (plain /ipX/<ip>/tcp/<port>), then on_dialed()
  };
  // body: the unframed protobuf from `peer`; observed: the remote address of the connection it
  // came on (nullopt or a circuit address: relayed).
  Decision on_request(const PeerId& peer, const std::optional<Multiaddr>& observed, ByteView body, TimePoint now);
  // The answer after the dials: OK with the address reached, or E_DIAL_ERROR.
  static Message on_dialed(const std::optional<Multiaddr>& reached);

 private:
  bool admit(const PeerId& peer, TimePoint now);
  ServerOptions opt_;
  std::deque<std::pair<TimePoint, PeerId>> recent_;  // accepted requests within the window
};

enum class Reachability { kUnknown, kPublic, kPrivate };
const char* reachability_name(Reachability r);

struct ClientOptions {
  size_t min_votes = 3;     // agreeing servers needed for a verdict (the spec's "more than 3"
                            // is reached at 4; 3 suits small swarms)
  size_t max_servers = 8;   // servers asked per check
  Status validate() const;
};

struct ReachabilityStatus {
  Reachability reachability = Reachability::kUnknown;
  size_t confidence = 0;                  // votes for the verdict
  size_t public_votes = 0, private_votes = 0;
  std::optional<Multiaddr> public_addr;   // the address most servers reached (public only)
};

class Client {
 public:
  explicit Client(ClientOptions options) : opt_(options) {}
  // The request to send: our candidate addresses (the server filters them).
  static Bytes request(const PeerId& self, const std::vector<Multiaddr>& addrs);
  // One server's answer (body: unframed protobuf) or the failure of the exchange. Ok when it
  // was a vote; otherwise why not (for logging).
  Status on_answer(const PeerId& server, const Result<Bytes>& body);
  void forget(const PeerId& server) { votes_.erase(server); }
  ReachabilityStatus status() const;

 private:
  struct Vote {
    bool reachable = false;
    std::optional<Multiaddr> addr;
  };
  ClientOptions opt_;
  std::map<PeerId, Vote> votes_;
};

}  // namespace noloco::p2p::autonat
