// Rewriting a built payload or state blob (payload_tamper.h). A payload is parsed with the real
// wire reader, its Δ decoded with the real codec, changed, re-encoded in the same codec mode and
// framed again, so that it passes every structural check and only the numeric ones can catch it.
#include "tools/attacker/payload_tamper.h"

#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "common/varint.h"
#include "trainer/core/codec.h"

namespace noloco::attacker {
namespace {

struct Parsed {
  node::PayloadHeader header;
  std::vector<std::pair<std::string, Bytes>> tensors;
};

// Our own payload's frames (in memory or spooled to a file) back into header and codec messages
// (the wire reader would insist on what a receiver expects; this is our own, freshly built payload).
Result<Parsed> parse(const node::WirePayload& w) {
  Parsed out;
  size_t tensor = 0;
  for (size_t i = 0; i < w.frame_count(); ++i) {
    NOLOCO_ASSIGN_OR_RETURN(const Bytes f, w.frame(i));  // a spooled payload's frame is read back
    NOLOCO_ASSIGN_OR_RETURN(VarintRead len, read_varint(f));
    ByteView body(f.data() + len.consumed, f.size() - len.consumed);
    if (i == 0) {
      NOLOCO_ASSIGN_OR_RETURN(out.header, node::decode_header(body));
      for (const auto& t : out.header.tensors) out.tensors.emplace_back(t.name, Bytes{});
      continue;
    }
    while (tensor < out.tensors.size() && out.tensors[tensor].second.size() >= out.header.tensors[tensor].encoded_bytes)
      ++tensor;
    if (tensor == out.tensors.size()) return internal_error("attacker: payload has more bytes than its header lists");
    out.tensors[tensor].second.insert(out.tensors[tensor].second.end(), body.begin(), body.end());
  }
  return out;
}

node::WirePayload reframe(Parsed p) {
  std::vector<std::pair<std::string, std::vector<Bytes>>> pieces;
  for (auto& [name, msg] : p.tensors) {
    std::vector<Bytes> parts;
    for (size_t at = 0; at < msg.size(); at += node::kExchangeChunkBytes) {
      const size_t n = std::min(node::kExchangeChunkBytes, msg.size() - at);
      parts.emplace_back(msg.begin() + static_cast<std::ptrdiff_t>(at), msg.begin() + static_cast<std::ptrdiff_t>(at + n));
    }
    pieces.emplace_back(name, std::move(parts));
  }
  p.header.tensors.clear();
  return node::frame_payload(std::move(p.header), std::move(pieces));
}

// Decodes one codec message, lets `change` rewrite the values, encodes them in the same mode.
template <typename F>
Status rewrite_values(Bytes& msg, F change) {
  NOLOCO_ASSIGN_OR_RETURN(codec::Decoded d, codec::decode(msg, codec::DecodeLimits{}));
  change(d.values);
  codec::EncodeOptions o;
  o.mode = d.header.mode;
  o.zstd = d.header.zstd;
  o.source_dtype = d.header.source_dtype;
  if (d.header.block_size) o.block_size = d.header.block_size;
  NOLOCO_ASSIGN_OR_RETURN(msg, codec::encode(d.values, d.header.shape(), o));
  return Status::Ok();
}

Result<Bytes*> delta_of(Parsed& p) {
  for (auto& [name, msg] : p.tensors)
    if (name == "delta") return &msg;
  return invalid_argument("attacker: this run's payloads carry no delta (the theta form is not supported)");
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

// Δ changed by `change` (flip, scale, noise).
std::function<Result<node::WirePayload>(node::WirePayload)> on_delta(std::function<void(std::vector<float>&)> change) {
  return [change](node::WirePayload w) -> Result<node::WirePayload> {
    NOLOCO_ASSIGN_OR_RETURN(Parsed p, parse(w));
    NOLOCO_ASSIGN_OR_RETURN(Bytes * delta, delta_of(p));
    NOLOCO_RETURN_IF_ERROR(rewrite_values(*delta, change));
    return reframe(std::move(p));
  };
}

}  // namespace

bool is_node_attack(const std::string& a) {
  return a == "flip" || a == "scale100" || a == "noise" || a == "replay" || a == "wrong-run" || a == "poison-state";
}

Result<node::PublishTamper> make_payload_tamper(const std::string& attack, uint64_t seed, uint64_t ahead) {
  node::PublishTamper t;
  if (attack == "flip") {
    t.payload = on_delta([](std::vector<float>& v) {
      for (float& x : v) x = -x;
    });
  } else if (attack == "scale100") {
    t.payload = on_delta([](std::vector<float>& v) {
      for (float& x : v) x *= 100.0f;
    });
  } else if (attack == "noise") {
    // Gaussian noise with exactly the norm of the honest Δ it replaces.
    auto rng = std::make_shared<std::mt19937_64>(seed);
    t.payload = on_delta([rng](std::vector<float>& v) {
      const double want = norm(v);
      std::normal_distribution<float> g(0.0f, 1.0f);
      for (float& x : v) x = g(*rng);
      const double have = norm(v);
      const float k = have > 0 ? static_cast<float>(want / have) : 0.0f;
      for (float& x : v) x *= k;
    });
  } else if (attack == "replay") {
    // The first payload we ever built, sent again at every outer step under the current step.
    auto first = std::make_shared<std::optional<Parsed>>();
    t.payload = [first](node::WirePayload w) -> Result<node::WirePayload> {
      NOLOCO_ASSIGN_OR_RETURN(Parsed now, parse(w));
      if (!*first) *first = now;
      Parsed old = **first;
      old.header.outer_step = now.header.outer_step;
      old.header.inner_step = now.header.inner_step;
      return reframe(std::move(old));
    };
  } else if (attack == "wrong-run") {
    t.payload = [](node::WirePayload w) -> Result<node::WirePayload> {
      NOLOCO_ASSIGN_OR_RETURN(Parsed p, parse(w));
      // Another run's id of the same shape: the first hex digit changed.
      if (!p.header.run_id.empty()) p.header.run_id[0] = p.header.run_id[0] == 'f' ? '0' : 'f';
      return reframe(std::move(p));
    };
  } else if (attack == "poison-state") {
    // Slow weights replaced by noise of their own norm, served as state; claiming to be `ahead`
    // outer steps past our real step makes us the peer lagging nodes sync from.
    auto rng = std::make_shared<std::mt19937_64>(seed);
    t.state = [rng, ahead](Bytes& blob, uint64_t& outer, uint64_t& /*inner*/) {
      outer += ahead;  // a state "ahead" of the node's own is the only one it adopts
      return rewrite_values(blob, [rng](std::vector<float>& v) {
        const double want = norm(v);
        std::normal_distribution<float> g(0.0f, 1.0f);
        for (float& x : v) x = g(*rng);
        const double have = norm(v);
        for (float& x : v) x *= have > 0 ? static_cast<float>(want / have) : 0.0f;
      });
    };
    t.advertised_outer_step = [ahead](uint64_t outer) { return outer + ahead; };
  } else {
    return invalid_argument("attacker: " + attack + " is not a payload or state attack");
  }
  return t;
}

}  // namespace noloco::attacker
