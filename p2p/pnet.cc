#include "p2p/pnet.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "common/encoding.h"
#include "p2p/identity.h"
#include "p2p/secret_file.h"

namespace noloco::p2p {

namespace {
constexpr std::string_view kBase16Line = "/base16/";
constexpr size_t kMaxSwarmKeyFile = 1024;
constexpr size_t kBlock = 64;  // XSalsa20 block size: the counter counts 64-byte blocks
}  // namespace

Result<Psk> parse_swarm_key(std::string_view text) {
  if (text.size() > kMaxSwarmKeyFile) return corrupt("swarm key: file too large");
  // Split into lines on '\n', dropping one '\r' before it; at most one final empty line.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  if (lines.size() != 3) return corrupt("swarm key: expected 3 lines, got " + std::to_string(lines.size()));
  if (lines[0] != kSwarmKeyHeader) return corrupt("swarm key: first line must be " + std::string(kSwarmKeyHeader));
  if (lines[1] != kBase16Line) {
    if (lines[1] == "/bin/" || lines[1] == "/base64/") return unsupported("swarm key: only /base16/ keys are supported");
    return corrupt("swarm key: second line must be /base16/");
  }
  if (lines[2].size() != 2 * kPnetKeySize) return corrupt("swarm key: key must be 64 hex digits");
  auto key = hex_decode(lines[2]);
  if (!key.ok()) return corrupt("swarm key: " + key.status().message());
  Psk psk;
  std::copy(key->begin(), key->end(), psk.begin());
  sodium_memzero(key->data(), key->size());
  return psk;
}

std::string format_swarm_key(const Psk& key) {
  return std::string(kSwarmKeyHeader) + "\n" + std::string(kBase16Line) + "\n" + hex_encode(key) + "\n";
}

Result<Psk> generate_psk() {
  NOLOCO_RETURN_IF_ERROR(ensure_sodium());
  Psk k;
  randombytes_buf(k.data(), k.size());
  return k;
}

Result<Psk> load_swarm_key_file(const std::filesystem::path& path) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes content, read_secret_file(path, kMaxSwarmKeyFile));
  auto key = parse_swarm_key(to_string(content));
  sodium_memzero(content.data(), content.size());
  if (!key.ok()) return key.status().context(path.string());
  return key;
}

Status write_swarm_key_file(const std::filesystem::path& path, const Psk& key) {
  return write_secret_file(path, as_bytes(format_swarm_key(key)));
}

// ---- codec ----

PnetCodec::PnetCodec(const Psk& key) : key_(key) {
  (void)ensure_sodium();
  randombytes_buf(send_.nonce.data(), send_.nonce.size());
}

PnetCodec::PnetCodec(const Psk& key, const PnetNonce& local_nonce) : key_(key) {
  (void)ensure_sodium();
  send_.nonce = local_nonce;
}

PnetCodec::~PnetCodec() { sodium_memzero(key_.data(), key_.size()); }

void PnetCodec::xor_stream(Stream& s, ByteView in, uint8_t* out) {
  size_t done = 0;
  // A call that starts inside a 64-byte block: finish that block from its keystream.
  if (size_t within = s.offset % kBlock; within != 0 && !in.empty()) {
    uint8_t block[kBlock] = {};
    crypto_stream_xsalsa20_xor_ic(block, block, kBlock, s.nonce.data(), s.offset / kBlock, key_.data());
    size_t n = std::min(kBlock - within, in.size());
    for (size_t i = 0; i < n; ++i) out[i] = in[i] ^ block[within + i];
    sodium_memzero(block, sizeof block);
    done = n;
    s.offset += n;
  }
  if (done < in.size()) {  // the rest starts on a block boundary
    crypto_stream_xsalsa20_xor_ic(out + done, in.data() + done, in.size() - done, s.nonce.data(), s.offset / kBlock,
                                  key_.data());
    s.offset += in.size() - done;
  }
}

Bytes PnetCodec::take_output() {
  if (nonce_sent_) return {};
  nonce_sent_ = true;
  return Bytes(send_.nonce.begin(), send_.nonce.end());
}

void PnetCodec::encrypt(ByteView plaintext, Bytes& out) {
  append(out, take_output());
  size_t base = out.size();
  out.resize(base + plaintext.size());
  xor_stream(send_, plaintext, out.data() + base);
}

Bytes PnetCodec::encrypt(ByteView plaintext) {
  Bytes out;
  encrypt(plaintext, out);
  return out;
}

void PnetCodec::decrypt(ByteView in, Bytes& plaintext_out) {
  if (remote_nonce_len_ < kPnetNonceSize) {
    size_t n = std::min(kPnetNonceSize - remote_nonce_len_, in.size());
    if (n > 0) std::memcpy(receive_.nonce.data() + remote_nonce_len_, in.data(), n);
    remote_nonce_len_ += n;
    in = in.subspan(n);
  }
  if (in.empty()) return;
  size_t base = plaintext_out.size();
  plaintext_out.resize(base + in.size());
  xor_stream(receive_, in, plaintext_out.data() + base);
}

Status PnetCodec::encrypt_in_place(std::span<uint8_t> data) {
  if (!nonce_sent_) return internal_error("pnet: encrypt_in_place before the nonce was sent");
  xor_stream(send_, data, data.data());  // XSalsa20 XOR works in place
  return Status::Ok();
}

std::span<uint8_t> PnetCodec::decrypt_in_place(std::span<uint8_t> in) {
  if (remote_nonce_len_ < kPnetNonceSize) {
    size_t n = std::min(kPnetNonceSize - remote_nonce_len_, in.size());
    if (n > 0) std::memcpy(receive_.nonce.data() + remote_nonce_len_, in.data(), n);
    remote_nonce_len_ += n;
    in = in.subspan(n);
  }
  if (!in.empty()) xor_stream(receive_, in, in.data());
  return in;
}

Bytes PnetCodec::decrypt(ByteView in) {
  Bytes out;
  decrypt(in, out);
  return out;
}

}  // namespace noloco::p2p
