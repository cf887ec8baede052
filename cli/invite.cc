// Invite strings (invite.h, docs/invite.md).
#include "cli/invite.h"

#include <algorithm>
#include <cstring>

#include "common/encoding.h"
#include "common/hash.h"
#include "p2p/protobuf.h"

namespace noloco::cli {
namespace {

constexpr uint32_t kFieldRunId = 1, kFieldBootstrap = 2, kFieldPsk = 3;
constexpr size_t kRunIdBytes = 16, kChecksumBytes = 4;

Bytes checksum_of(ByteView record) {
  const auto digest = sha256(record);
  return Bytes(digest.begin(), digest.begin() + kChecksumBytes);
}

Status bad(const std::string& why) { return invalid_argument("invite: " + why); }

// Pasted text may keep the quotes of the printed shell command, or a newline.
std::string_view trim(std::string_view s) {
  auto strip = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\'' || c == '"'; };
  while (!s.empty() && strip(s.front())) s.remove_prefix(1);
  while (!s.empty() && strip(s.back())) s.remove_suffix(1);
  return s;
}

Result<Invite> parse_record(ByteView record) {
  Invite inv;
  bool have_run = false;
  p2p::pb::Reader r(record, 1024);
  while (!r.done()) {
    auto f = r.next();
    if (!f.ok()) return bad("its record does not parse (" + f.status().message() + ")");
    if (f->type != p2p::pb::WireType::kLengthDelimited) continue;  // unknown kinds: forward compatible
    if (f->number == kFieldRunId) {
      if (have_run || f->data.size() != kRunIdBytes) return bad("the run id must appear once, 16 bytes");
      inv.run_id = hex_encode(f->data);
      have_run = true;
    } else if (f->number == kFieldBootstrap) {
      if (inv.bootstrap.size() == kMaxInviteBootstrap)
        return bad("more than " + std::to_string(kMaxInviteBootstrap) + " bootstrap addresses");
      auto a = p2p::Multiaddr::from_bytes(f->data);
      if (!a.ok()) return bad("a bootstrap address does not parse (" + a.status().message() + ")");
      inv.bootstrap.push_back(std::move(*a));
    } else if (f->number == kFieldPsk) {
      if (inv.psk || f->data.size() != p2p::kPnetKeySize) return bad("the swarm key must appear once, 32 bytes");
      p2p::Psk k;
      std::memcpy(k.data(), f->data.data(), k.size());
      inv.psk = k;
    }
  }
  if (Status st = validate_invite(inv); !st.ok()) return st;
  return inv;
}

}  // namespace

Status validate_invite(const Invite& inv) {
  if (inv.run_id.size() != 2 * kRunIdBytes) return bad("no run id (32 hex digits)");
  auto raw = hex_decode(inv.run_id);
  if (!raw.ok() || hex_encode(*raw) != inv.run_id) return bad("the run id is not 32 lowercase hex digits");
  if (inv.bootstrap.empty()) return bad("no bootstrap address: a joiner would have nobody to ask");
  if (inv.bootstrap.size() > kMaxInviteBootstrap)
    return bad("more than " + std::to_string(kMaxInviteBootstrap) + " bootstrap addresses");
  for (const auto& a : inv.bootstrap) {
    if (!a.peer_id()) return bad("bootstrap address " + a.to_string() + " has no /p2p/<peer id>");
    if (!a.host() || !a.tcp_port()) return bad("bootstrap address " + a.to_string() + " has no host and TCP port");
  }
  return Status::Ok();
}

Result<std::string> encode_invite(const Invite& inv) {
  NOLOCO_RETURN_IF_ERROR(validate_invite(inv));
  p2p::pb::Writer w;
  w.add_bytes(kFieldRunId, *hex_decode(inv.run_id));
  for (const auto& a : inv.bootstrap) w.add_bytes(kFieldBootstrap, a.to_bytes());
  if (inv.psk) w.add_bytes(kFieldPsk, ByteView(inv.psk->data(), inv.psk->size()));
  Bytes body = w.take();
  const Bytes sum = checksum_of(body);
  body.insert(body.end(), sum.begin(), sum.end());
  std::string out = std::string(kInvitePrefix) + base58_encode(body);
  if (out.size() > kMaxInviteText) return bad("too long (" + std::to_string(out.size()) + " characters)");
  return out;
}

Result<Invite> decode_invite(std::string_view text) {
  text = trim(text);
  if (text.size() > kMaxInviteText)
    return bad("longer than " + std::to_string(kMaxInviteText) + " characters: not an invite");
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.substr(0, 6) != "noloco")
    return bad("it does not start with '" + std::string(kInvitePrefix) + "': not a noloco invite");
  if (text.substr(0, colon + 1) != kInvitePrefix)
    return bad("version '" + std::string(text.substr(0, colon)) + "' is not one this noloco reads (it reads '" +
               std::string(kInvitePrefix) + "'): update noloco or ask for a new invite");
  auto raw = base58_decode(text.substr(colon + 1));
  if (!raw.ok()) return bad(raw.status().message() + " (damaged when copied?)");
  if (raw->size() <= kChecksumBytes) return bad("too short: truncated when copied?");
  const ByteView body(raw->data(), raw->size() - kChecksumBytes);
  const Bytes want = checksum_of(body);
  if (!std::equal(want.begin(), want.end(), raw->end() - kChecksumBytes))
    return bad("its checksum does not match: it was truncated or changed when copied");
  return parse_record(body);
}

}  // namespace noloco::cli
