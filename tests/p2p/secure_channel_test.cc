// End to end in memory: pnet (optional) -> multistream-select "/noise" -> Noise XX -> data,
// two peers wired back to back through byte buffers, delivered in uneven pieces.
#include <catch2/catch.hpp>

#include <memory>
#include <optional>

#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "p2p/pnet.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {

class Peer {
 public:
  Peer(bool dialer, const Identity& id, std::optional<Psk> psk, std::optional<PeerId> expect)
      : dialer_(dialer), id_(id), expect_(std::move(expect)) {
    if (psk) pnet_.emplace(*psk);
    if (dialer) {
      msd_ = std::make_unique<MultistreamDialer>(std::vector<std::string>{std::string(kNoiseProtocolId)});
      send(msd_->take_output());
    } else {
      msl_ = std::make_unique<MultistreamListener>(std::vector<std::string>{std::string(kNoiseProtocolId)});
      send(msl_->take_output());
    }
  }

  // Application data: queued until the secure channel exists.
  void write(ByteView data) {
    append(app_pending_, data);
    flush_app();
  }

  void on_wire(ByteView wire) {
    if (dead_) return;
    Bytes plain = pnet_ ? pnet_->decrypt(wire) : Bytes(wire.begin(), wire.end());
    on_plain(plain);
  }

  Bytes take_wire() { return std::exchange(wire_out_, {}); }
  bool secure() const { return transport_.has_value(); }
  bool dead() const { return dead_; }
  const Bytes& received() const { return app_in_; }
  const Status& error() const { return error_; }

 private:
  void send(ByteView plain) {
    if (plain.empty()) return;
    if (pnet_) {
      pnet_->encrypt(plain, wire_out_);
    } else {
      append(wire_out_, plain);
    }
  }
  void die(Status s) {
    dead_ = true;
    error_ = std::move(s);
  }
  void flush_app() {
    if (!transport_ || app_pending_.empty()) return;
    Bytes frames;
    Status s = transport_->encrypt_into(app_pending_, frames);
    if (!s.ok()) return die(s);
    app_pending_.clear();
    send(frames);
  }
  void on_plain(ByteView plain) {
    if (!noise_) {
      Status s = dialer_ ? msd_->feed(plain) : msl_->feed(plain);
      if (!s.ok()) return die(s);
      send(dialer_ ? msd_->take_output() : msl_->take_output());
      bool done = dialer_ ? msd_->done() : msl_->done();
      if (!done) return;
      Bytes leftover = dialer_ ? msd_->take_leftover() : msl_->take_leftover();
      noise_ = std::make_unique<NoiseHandshake>(dialer_ ? NoiseRole::kInitiator : NoiseRole::kResponder, id_, expect_);
      send(noise_->take_output());
      if (!leftover.empty()) on_plain(leftover);
      return;
    }
    if (!transport_) {
      Status s = noise_->feed(plain);
      if (!s.ok()) return die(s);
      send(noise_->take_output());
      if (!noise_->done()) return;
      auto t = noise_->take_transport();
      if (!t.ok()) return die(t.status());
      transport_.emplace(std::move(*t));
      flush_app();
      Bytes leftover = noise_->take_leftover();
      if (!leftover.empty()) on_plain(leftover);
      return;
    }
    Status s = transport_->decrypt_into(plain, app_in_);
    if (!s.ok()) die(s);
  }

  bool dialer_;
  Identity id_;
  std::optional<PeerId> expect_;
  std::optional<PnetCodec> pnet_;
  std::unique_ptr<MultistreamDialer> msd_;
  std::unique_ptr<MultistreamListener> msl_;
  std::unique_ptr<NoiseHandshake> noise_;
  std::optional<NoiseTransport> transport_;
  Bytes wire_out_, app_pending_, app_in_;
  bool dead_ = false;
  Status error_;
};

// Delivers wire bytes both ways in pieces of varying size until nothing moves.
void run(Peer& a, Peer& b) {
  size_t piece = 1;
  for (int round = 0; round < 1000; ++round) {
    Bytes ab = a.take_wire();
    Bytes ba = b.take_wire();
    if (ab.empty() && ba.empty()) return;
    for (size_t off = 0; off < ab.size(); off += piece) b.on_wire(ByteView(ab).subspan(off, std::min(piece, ab.size() - off)));
    for (size_t off = 0; off < ba.size(); off += piece) a.on_wire(ByteView(ba).subspan(off, std::min(piece, ba.size() - off)));
    piece = piece * 7 % 1013 + 1;
  }
  FAIL("did not settle");
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 13);
  return b;
}

}  // namespace

TEST_CASE("multistream + Noise end to end, with and without pnet", "[secure_channel]") {
  for (bool with_pnet : {false, true}) {
    INFO("pnet " << with_pnet);
    Identity ia = *Identity::generate();
    Identity ib = *Identity::generate();
    std::optional<Psk> psk;
    if (with_pnet) psk = *generate_psk();
    Peer a(true, ia, psk, ib.peer_id());
    Peer b(false, ib, psk, std::nullopt);
    Bytes to_b = pattern(150000, 1), to_a = pattern(3000, 2);
    a.write(to_b);  // queued before the channel exists
    run(a, b);
    REQUIRE(a.secure());
    REQUIRE(b.secure());
    b.write(to_a);
    a.write(as_bytes("tail"));
    run(a, b);
    CHECK_FALSE(a.dead());
    CHECK_FALSE(b.dead());
    Bytes expect_b = to_b;
    append(expect_b, as_bytes("tail"));
    CHECK(b.received() == expect_b);
    CHECK(a.received() == to_a);
  }
}

TEST_CASE("pnet with different keys: no handshake completes, no application byte delivered", "[secure_channel][pnet]") {
  Identity ia = *Identity::generate();
  Identity ib = *Identity::generate();
  Psk ka = *generate_psk();
  Psk kb = *generate_psk();
  Peer a(true, ia, ka, ib.peer_id());
  Peer b(false, ib, kb, std::nullopt);
  a.write(as_bytes("secret for b"));
  run(a, b);
  CHECK_FALSE(a.secure());
  CHECK_FALSE(b.secure());
  // Each side sees the other's multistream header as garbage and fails at its first wrong byte
  // (a 2^-160 chance that 20 random bytes match the header).
  CHECK(a.dead());
  CHECK(b.dead());
  CHECK(a.error().code() == StatusCode::kProtocolError);
  CHECK(a.received().empty());
  CHECK(b.received().empty());
}

TEST_CASE("pnet on one side only fails cleanly", "[secure_channel][pnet]") {
  Identity ia = *Identity::generate();
  Identity ib = *Identity::generate();
  Peer a(true, ia, *generate_psk(), std::nullopt);
  Peer b(false, ib, std::nullopt, std::nullopt);
  a.write(as_bytes("x"));
  run(a, b);
  CHECK_FALSE(a.secure());
  CHECK_FALSE(b.secure());
  // b sees a's nonce and ciphertext as garbage; a takes b's 20-byte plaintext header as the
  // start of a 24-byte nonce and is still waiting (a real connection then times out).
  CHECK(b.dead());
  CHECK(b.received().empty());
  CHECK(a.received().empty());
}
