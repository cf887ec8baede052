// libp2p Noise (github.com/libp2p/specs noise/README.md): Noise_XX_25519_ChaChaPoly_SHA256 with
// a signed handshake payload binding the Noise static key to the libp2p identity, then an
// encrypted transport. Protocol id "/noise".
//
// Framing: every Noise message, handshake or transport, is <u16 big-endian length><message>.
// Handshake payload: protobuf NoiseHandshakePayload { bytes identity_key = 1 (PublicKey protobuf);
// bytes identity_sig = 2; NoiseExtensions extensions = 4 (optional; stream_muxers = 2) }, the
// signature being Ed25519 over "noise-libp2p-static-key:" || static X25519 public key.
// The responder sends its payload in message 2, the initiator in message 3.
// See docs/protocols/noise.md.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/noise_state.h"

namespace noloco::p2p {

constexpr std::string_view kNoiseProtocolId = "/noise";
constexpr size_t kMaxNoiseMessage = 65535;              // the 2-byte length prefix's limit
constexpr size_t kMaxNoisePlaintext = kMaxNoiseMessage - noise::kTagLen;
// Handshake messages are small (keys, a signature, a short extensions list); anything larger
// is refused as soon as its length prefix is read.
constexpr size_t kMaxNoiseHandshakeMessage = 8192;
constexpr std::string_view kNoiseSignaturePrefix = "noise-libp2p-static-key:";

enum class NoiseRole { kInitiator, kResponder };

// The secure channel after the handshake. Any failure (decrypt, framing, nonce exhaustion) is
// terminal: failed() turns true and every later call returns the same error with no output.
class NoiseTransport {
 public:
  // Encrypts plaintext into as many frames as needed (each at most kMaxNoisePlaintext bytes of
  // plaintext, so at most 65535 bytes on the wire after the length) and appends them to out.
  // An empty plaintext produces no frame.
  Status encrypt_into(ByteView plaintext, Bytes& out);
  Result<Bytes> encrypt_frame(ByteView plaintext);
  // The same frames written into caller memory of exactly sealed_size(plaintext.size()) bytes
  // (which must not overlap plaintext), so the caller can reuse storage instead of growing
  // and zero-filling a vector. Either every frame is written or none (out is then unspecified).
  Status encrypt_to(ByteView plaintext, std::span<uint8_t> out);
  static size_t sealed_size(size_t plaintext_size);

  // Consumes received bytes (any split), appends the plaintext of every complete frame.
  Status decrypt_into(ByteView in, Bytes& plaintext_out);
  Result<Bytes> feed(ByteView in);
  // The same, decrypting the complete frames where they lie in `in` (which is overwritten):
  // appends one view per frame's plaintext to `parts`, valid until the next call on this
  // transport (and while `in` lives). Only a frame split across calls is copied. On failure
  // `parts` is left as it was: nothing of this call may be used.
  Status decrypt_in_place(std::span<uint8_t> in, std::vector<ByteView>& parts);

  bool failed() const { return !error_.ok(); }
  const Status& error() const { return error_; }
  const PeerId& remote_peer_id() const { return remote_; }

  // Tests only: move both nonces close to exhaustion.
  void set_nonces_for_test(uint64_t send, uint64_t receive);

 private:
  friend class NoiseHandshake;
  NoiseTransport() = default;
  Status fail(Status s);
  noise::CipherState send_;
  noise::CipherState receive_;
  PeerId remote_;
  Bytes in_;         // a partial frame
  Bytes completed_;  // the last partial frame once complete, decrypted in place
  Status error_;
};

class NoiseHandshake {
 public:
  // expected_remote: the PeerId we dialled; the handshake fails with kPermissionDenied if the
  // remote proves a different identity.
  NoiseHandshake(NoiseRole role, const Identity& identity,
                 std::optional<PeerId> expected_remote = std::nullopt);

  // Consumes received bytes; terminal error once failed. kProtocolError / kCorrupt for
  // garbage, kTooLarge for an oversized message, kPermissionDenied for a bad identity
  // signature or an unexpected peer id, kUnsupported for a non-Ed25519 identity key.
  Status feed(ByteView in);
  Bytes take_output();  // the initiator's first message is ready at once

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  const Status& error() const { return error_; }

  // Valid once done().
  const PeerId& remote_peer_id() const { return remote_; }
  const std::vector<std::string>& remote_stream_muxers() const { return remote_muxers_; }
  // Once, when done(): the transport ciphers. Bytes received after the last handshake
  // message are in take_leftover() and must be fed to the transport next.
  Result<NoiseTransport> take_transport();
  Bytes take_leftover();

 private:
  enum class State { kRunning, kDone, kFailed };
  Status fail(Status s);
  Status advance();                       // write our messages while it is our turn
  Status on_message(ByteView message);    // one complete received handshake message
  Bytes make_payload() const;
  Status check_payload(ByteView payload);

  NoiseRole role_;
  Identity identity_;
  std::optional<PeerId> expected_;
  noise::DhKeyPair static_keys_;
  noise::HandshakeStateXX hs_;
  State state_ = State::kRunning;
  Status error_;
  Bytes in_;
  Bytes out_;
  PeerId remote_;
  std::vector<std::string> remote_muxers_;
  bool transport_taken_ = false;
};

// Parsed NoiseHandshakePayload (exposed for tests and fuzzing).
struct NoiseHandshakePayload {
  Bytes identity_key;  // PublicKey protobuf
  Bytes identity_sig;
  std::vector<std::string> stream_muxers;
};
Result<NoiseHandshakePayload> parse_noise_handshake_payload(ByteView bytes);
Bytes encode_noise_handshake_payload(const NoiseHandshakePayload& payload);

}  // namespace noloco::p2p
