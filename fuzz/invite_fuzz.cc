// Fuzzes invite decoding (cli/invite.h) twice per input: the bytes as pasted text, and the bytes
// as a record wrapped with a correct checksum (so the record parser is reached, not only the
// checksum check). Whatever decodes must encode back to an invite that decodes to the same.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/invite.h"
#include "common/encoding.h"
#include "common/hash.h"

using namespace noloco;
using namespace noloco::cli;

namespace {

void round_trip(const Invite& inv) {
  auto text = encode_invite(inv);
  if (!text.ok()) std::abort();
  auto back = decode_invite(*text);
  if (!back.ok() || back->run_id != inv.run_id || back->bootstrap != inv.bootstrap || back->psk != inv.psk)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  if (auto inv = decode_invite(to_string(in)); inv.ok()) round_trip(*inv);
  if (size > 700) return 0;  // stays under the text cap once in base58
  Bytes wrapped(in.begin(), in.end());
  const auto d = sha256(in);
  wrapped.insert(wrapped.end(), d.begin(), d.begin() + 4);
  if (auto inv = decode_invite(std::string(kInvitePrefix) + base58_encode(wrapped)); inv.ok()) round_trip(*inv);
  return 0;
}
