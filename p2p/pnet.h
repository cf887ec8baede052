// libp2p private networks, PSK v1 (github.com/libp2p/specs pnet/Private-Networks-PSK-V1.md).
//
// Swarm key file (exactly three lines; a trailing newline after the key is allowed):
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits = 32-byte key>
// Per connection, before anything else (multistream, Noise), each side sends a fresh random
// 24-byte nonce; from then on every byte in each direction is XORed with the XSalsa20 keystream
// under (psk, sender's nonce). A peer with another key sees garbage, so no handshake completes.
// See docs/protocols/pnet.md.
#pragma once

#include <array>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

constexpr size_t kPnetKeySize = 32;
constexpr size_t kPnetNonceSize = 24;
constexpr std::string_view kSwarmKeyHeader = "/key/swarm/psk/1.0.0/";

using Psk = std::array<uint8_t, kPnetKeySize>;
using PnetNonce = std::array<uint8_t, kPnetNonceSize>;

// Strict: the exact header lines, "/base16/" encoding only, exactly 64 hex digits, optional
// single trailing "\n" (or "\r\n" line ends); anything else is kCorrupt.
Result<Psk> parse_swarm_key(std::string_view text);
std::string format_swarm_key(const Psk& key);
Result<Psk> generate_psk();

// Swarm key files: written 0600 atomically (refuses to overwrite); a group/world-readable
// file is kPermissionDenied, as for identity keys.
Result<Psk> load_swarm_key_file(const std::filesystem::path& path);
Status write_swarm_key_file(const std::filesystem::path& path, const Psk& key);

// One connection's pnet layer. Sans-IO:
//   - take_output(): our nonce, to be sent first (also prepended by the first encrypt());
//   - encrypt(): plaintext -> bytes to send; decrypt(): bytes received -> plaintext (the first
//     24 bytes received are the remote nonce, consumed silently).
// Calls may be of any size; the keystream offset carries over between calls.
class PnetCodec {
 public:
  explicit PnetCodec(const Psk& key);                           // random local nonce
  PnetCodec(const Psk& key, const PnetNonce& local_nonce);      // tests
  ~PnetCodec();

  Bytes take_output();
  void encrypt(ByteView plaintext, Bytes& out);
  Bytes encrypt(ByteView plaintext);
  void decrypt(ByteView in, Bytes& plaintext_out);
  Bytes decrypt(ByteView in);
  // The same where the bytes lie. encrypt_in_place needs our nonce taken (take_output) first,
  // since it cannot prepend it: kInternal otherwise. decrypt_in_place returns the plaintext
  // part of `in` (the remote nonce bytes at its start, if any, are consumed).
  Status encrypt_in_place(std::span<uint8_t> data);
  std::span<uint8_t> decrypt_in_place(std::span<uint8_t> in);

  bool remote_nonce_received() const { return remote_nonce_len_ == kPnetNonceSize; }

 private:
  struct Stream {
    PnetNonce nonce{};
    uint64_t offset = 0;  // bytes of keystream used
  };
  void xor_stream(Stream& s, ByteView in, uint8_t* out);
  Psk key_;
  Stream send_;
  Stream receive_;
  bool nonce_sent_ = false;
  size_t remote_nonce_len_ = 0;
};

}  // namespace noloco::p2p
