// The invite string of `noloco init-run` / `noloco join` (docs/invite.md): everything another
// machine needs to join a run, in one line to paste. Torch- and Asio-free: parsed from whatever
// a user pastes, so every refusal is a clear Status, never a crash.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "p2p/multiaddr.h"
#include "p2p/pnet.h"

namespace noloco::cli {

inline constexpr std::string_view kInvitePrefix = "noloco1:";
inline constexpr size_t kMaxInviteText = 8 + 1024;  // prefix + base58_decode's cap; checked first (base58 is quadratic)
inline constexpr size_t kMaxInviteBootstrap = 8;    // bootstrap addresses in one invite (8 fit the text cap)

struct Invite {
  std::string run_id;                     // 32 lowercase hex digits: the manifest's hash (run_manifest.h)
  std::vector<p2p::Multiaddr> bootstrap;  // each ends in /p2p/<peer id>
  std::optional<p2p::Psk> psk;            // present for a private run: the swarm key itself

  bool is_private() const { return psk.has_value(); }
};

// kInvalidArgument naming what is wrong (no run id, no bootstrap, an address without /p2p/, ...).
Status validate_invite(const Invite& invite);

// "noloco1:" + base58btc(record || first 4 bytes of SHA-256(record)); the record is protobuf
// wire format (field 1 run id, 16 bytes; field 2 bootstrap multiaddr, binary, repeated; field 3
// PSK, 32 bytes). Fails only when validate_invite does.
Result<std::string> encode_invite(const Invite& invite);

// Strict: surrounding whitespace and quotes are tolerated (pasted from a shell line), anything
// else wrong is kInvalidArgument with a message that says what (not an invite, made by another
// noloco version, damaged or truncated, ...).
Result<Invite> decode_invite(std::string_view text);

}  // namespace noloco::cli
