// The target side of a circuit: which STOP requests we accept and what we answer.
#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/relay_stop.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::relay;

namespace {

StopMessage connect_from(const PeerId& p) {
  StopMessage m;
  m.type = StopType::kConnect;
  m.peer = RelayPeer{p, {}};
  m.limit = RelayLimit{60, 4096};
  return m;
}

}  // namespace

TEST_CASE("stop side accepts CONNECT from an allowed relay and names the source", "[relay]") {
  const PeerId src = Identity::generate()->peer_id();
  auto d = on_stop(encode_stop(connect_from(src)), true);
  CHECK(d.reply == stop_status(RelayStatus::kOk));
  CHECK(d.source == src);
  CHECK(d.limit == RelayLimit{60, 4096});
}

TEST_CASE("stop side refuses bad, unexpected and unwanted requests", "[relay]") {
  const PeerId src = Identity::generate()->peer_id();
  auto refused = [](const StopDecision& d, RelayStatus s) {
    return d.reply.type == StopType::kStatus && d.reply.status == s && !d.source;
  };
  CHECK(refused(on_stop(*hex_decode("ff"), true), RelayStatus::kMalformedMessage));
  CHECK(refused(on_stop(*hex_decode(""), true), RelayStatus::kMalformedMessage));
  CHECK(refused(on_stop(*hex_decode("0800"), true), RelayStatus::kMalformedMessage));  // CONNECT, no peer
  CHECK(refused(on_stop(*hex_decode("0802"), true), RelayStatus::kMalformedMessage));  // unknown type
  CHECK(refused(on_stop(encode_stop(stop_status(RelayStatus::kOk)), true), RelayStatus::kUnexpectedMessage));
  CHECK(refused(on_stop(encode_stop(connect_from(src)), false), RelayStatus::kPermissionDenied));
}
