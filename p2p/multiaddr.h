// Multiaddr: self-describing network addresses, text ("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...")
// and binary (varint protocol code, then the value: fixed size, or varint length + bytes).
// Supported protocols (codes from the multiformats multiaddr table):
//   ip4 = 4 (4 bytes), tcp = 6 (2 bytes BE), ip6 = 41 (16 bytes), dns4 = 54, dns6 = 55
//   (length-prefixed UTF-8 name), p2p = 421 (length-prefixed PeerId multihash; "/ipfs/" is read
//   as an alias and printed as "/p2p/"), p2p-circuit = 290 (0x0122, no value: the relayed hop,
//   "/<relay address>/p2p/<relay>/p2p-circuit/p2p/<target>", see docs/protocols/relay.md).
// Parsing is strict: unknown protocol, bad address, port > 65535, empty or trailing parts are
// errors. See docs/protocols/multiaddr.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/identity.h"

namespace noloco::p2p {

enum class MultiaddrProtocol : uint32_t {
  kIp4 = 4,
  kTcp = 6,
  kIp6 = 41,
  kDns4 = 54,
  kDns6 = 55,
  kP2p = 421,
  kP2pCircuit = 290,
};

struct MultiaddrComponent {
  MultiaddrProtocol protocol;
  Bytes value;  // binary value as on the wire (without the length prefix)
  bool operator==(const MultiaddrComponent&) const = default;
};

constexpr size_t kMaxMultiaddrBytes = 1024;  // cap for binary input
// Text is up to 6x the binary form ("/p2p-circuit" for its 2-byte code; "/ip4/255.255.255.255"
// is 4x its 5 bytes), so every binary multiaddr we accept also prints to text we accept. It was
// 4x until multiaddr_fuzz found 734 bytes of p2p-circuit components printing to 4168 characters.
constexpr size_t kMaxMultiaddrText = 6 * kMaxMultiaddrBytes;

struct CircuitParts;

class Multiaddr {
 public:
  Multiaddr() = default;  // empty address

  static Result<Multiaddr> parse(std::string_view text);
  static Result<Multiaddr> from_bytes(ByteView bytes);
  // "/ip4/<ip>/tcp/<port>" or "/ip6/<ip>/tcp/<port>" from a numeric IP literal.
  static Result<Multiaddr> from_ip_tcp(std::string_view ip, uint16_t port);

  std::string to_string() const;
  Bytes to_bytes() const;
  bool empty() const { return components_.empty(); }
  const std::vector<MultiaddrComponent>& components() const { return components_; }

  // The first ip4/ip6/dns4/dns6 component as text (an IP literal or a DNS name).
  std::optional<std::string> host() const;
  // True when host() is a DNS name that must be resolved (dns4/dns6).
  bool host_is_dns() const;
  std::optional<uint16_t> tcp_port() const;
  // The PeerId of the trailing /p2p component, if any.
  std::optional<PeerId> peer_id() const;

  // True when the address goes through a relay (/p2p-circuit somewhere in it).
  bool is_circuit() const;
  // Splits "<relay>/p2p-circuit[/p2p/<target>]" at its first /p2p-circuit. kInvalidArgument
  // unless the relay part is a dialable /p2p/<relay> address and at most one /p2p/<target>
  // follows (a second relay hop is not supported).
  Result<CircuitParts> circuit_parts() const;

  // Drops a trailing /p2p/<id> (if present); with_peer_id replaces it.
  Multiaddr without_peer_id() const;
  Multiaddr with_peer_id(const PeerId& id) const;

  bool operator==(const Multiaddr&) const = default;

 private:
  std::vector<MultiaddrComponent> components_;
};

struct CircuitParts {
  Multiaddr relay;  // ends with /p2p/<relay id>
  std::optional<PeerId> target;
};

}  // namespace noloco::p2p
