#include <catch2/catch.hpp>

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "p2p/pnet.h"

using namespace noloco;
using namespace noloco::p2p;
namespace fs = std::filesystem;

namespace {
Psk test_key(uint8_t seed) {
  Psk k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i * 3);
  return k;
}
PnetNonce test_nonce(uint8_t seed) {
  PnetNonce n;
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(seed ^ (i * 11));
  return n;
}
}  // namespace

TEST_CASE("swarm key file format round-trips", "[pnet]") {
  Psk k = test_key(1);
  std::string text = format_swarm_key(k);
  CHECK(text == "/key/swarm/psk/1.0.0/\n/base16/\n" + hex_encode(k) + "\n");
  auto parsed = parse_swarm_key(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == k);
  // No trailing newline, CRLF line ends and upper-case hex are accepted.
  CHECK(*parse_swarm_key(text.substr(0, text.size() - 1)) == k);
  std::string upper = hex_encode(k);
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  CHECK(*parse_swarm_key("/key/swarm/psk/1.0.0/\r\n/base16/\r\n" + upper + "\r\n") == k);
}

TEST_CASE("swarm key parsing is strict", "[pnet]") {
  std::string hex64 = hex_encode(test_key(2));
  const std::string bad[] = {
      "",
      "/key/swarm/psk/1.0.0/\n/base16/\n",
      "/key/swarm/psk/2.0.0/\n/base16/\n" + hex64,
      "/key/swarm/psk/1.0.0/\n/base32/\n" + hex64,
      "/key/swarm/psk/1.0.0/\n/base16/\n" + hex64.substr(2),
      "/key/swarm/psk/1.0.0/\n/base16/\n" + hex64 + "00",
      "/key/swarm/psk/1.0.0/\n/base16/\n" + hex64.substr(1) + "g",
      "/key/swarm/psk/1.0.0/\n/base16/\n" + hex64 + "\n\n",
      "/key/swarm/psk/1.0.0/\n/base16/\n " + hex64.substr(1),
      " /key/swarm/psk/1.0.0/\n/base16/\n" + hex64,
      "/key/swarm/psk/1.0.0/\n/base16/\n" + hex64 + "\nextra",
  };
  for (const auto& t : bad) {
    INFO(t);
    CHECK_FALSE(parse_swarm_key(t).ok());
  }
  CHECK(parse_swarm_key("/key/swarm/psk/1.0.0/\n/base64/\nAAAA").status().code() == StatusCode::kUnsupported);
  CHECK(parse_swarm_key(std::string(5000, 'a')).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("swarm key files are 0600 and refused when readable by others", "[pnet]") {
  std::string tmpl = (fs::temp_directory_path() / "noloco-pnet-XXXXXX").string();
  fs::path dir = ::mkdtemp(tmpl.data());
  fs::path file = dir / "swarm.key";
  Psk k = *generate_psk();
  REQUIRE(write_swarm_key_file(file, k).ok());
  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(*load_swarm_key_file(file) == k);
  CHECK(write_swarm_key_file(file, k).code() == StatusCode::kAlreadyExists);
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  CHECK(load_swarm_key_file(file).status().code() == StatusCode::kPermissionDenied);
  fs::remove_all(dir);
}

TEST_CASE("pnet stream: nonce first, then the XSalsa20 keystream at the right offsets", "[pnet]") {
  Psk k = test_key(9);
  PnetNonce n = test_nonce(4);
  Bytes plain(1000);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i);
  // Reference: libsodium's XSalsa20 keystream for (key, nonce), XORed in one go.
  Bytes reference(plain.size());
  crypto_stream_xsalsa20_xor(reference.data(), plain.data(), plain.size(), n.data(), k.data());

  for (size_t piece : {size_t{1}, size_t{7}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}}) {
    INFO("piece " << piece);
    PnetCodec a(k, n);
    Bytes wire;
    for (size_t off = 0; off < plain.size(); off += piece) {
      a.encrypt(ByteView(plain).subspan(off, std::min(piece, plain.size() - off)), wire);
    }
    REQUIRE(wire.size() == 24 + plain.size());
    CHECK(std::equal(n.begin(), n.end(), wire.begin()));
    CHECK(Bytes(wire.begin() + 24, wire.end()) == reference);

    PnetCodec b(k, test_nonce(5));
    Bytes got;
    for (size_t off = 0; off < wire.size(); off += piece) {
      b.decrypt(ByteView(wire).subspan(off, std::min(piece, wire.size() - off)), got);
    }
    CHECK(b.remote_nonce_received());
    CHECK(got == plain);
  }
}

TEST_CASE("pnet codec: take_output sends the nonce once, random nonces differ", "[pnet]") {
  Psk k = test_key(3);
  PnetCodec a(k), b(k);
  Bytes na = a.take_output();
  Bytes nb = b.take_output();
  CHECK(na.size() == kPnetNonceSize);
  CHECK(na != nb);
  CHECK(a.take_output().empty());
  CHECK(a.encrypt(as_bytes("x")).size() == 1);  // nonce already taken
  PnetCodec c(k);
  CHECK(c.encrypt(as_bytes("x")).size() == 25);  // nonce prepended
  // Both directions between two codecs.
  PnetCodec x(k), y(k);
  Bytes to_y = x.encrypt(as_bytes("hello y"));
  Bytes to_x = y.encrypt(as_bytes("hello x"));
  CHECK(to_string(y.decrypt(to_y)) == "hello y");
  CHECK(to_string(x.decrypt(to_x)) == "hello x");
}

TEST_CASE("pnet with the wrong key yields garbage", "[pnet]") {
  PnetCodec a(test_key(1)), b(test_key(2));
  Bytes got = b.decrypt(a.encrypt(as_bytes("/multistream/1.0.0\n")));
  CHECK(got.size() == 19);
  CHECK(to_string(got) != "/multistream/1.0.0\n");
}
