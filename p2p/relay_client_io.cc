#include "p2p/relay_client_io.h"

#include "p2p/framing.h"

namespace noloco::p2p::relay {

void request_reservation(std::shared_ptr<HostStream> hop, std::function<void(Result<ReservationGrant>)> cb) {
  hop->write(encode_length_prefixed(reserve_request()));
  hop->read_message(
      [hop, cb = std::move(cb)](Result<Bytes> r) {
        hop->close_write();
        if (!r.ok()) return cb(r.status().context("relay reservation"));
        cb(parse_reserve_reply(*r));
      },
      kMaxRelayMessage);
}

void request_circuit(std::shared_ptr<HostStream> hop, const PeerId& target,
                     std::function<void(Result<std::optional<RelayLimit>>)> cb) {
  hop->write(encode_length_prefixed(connect_request(target)));
  hop->read_message(
      [hop, cb = std::move(cb)](Result<Bytes> r) {
        if (!r.ok()) return cb(r.status().context("relay connect"));
        auto limit = parse_connect_reply(*r);
        if (!limit.ok()) hop->reset();
        cb(std::move(limit));
      },
      kMaxRelayMessage);
}

void answer_stop(std::shared_ptr<HostStream> stop, bool relay_allowed, std::function<void(Result<StopDecision>)> cb) {
  stop->read_message(
      [stop, relay_allowed, cb = std::move(cb)](Result<Bytes> r) {
        if (!r.ok()) return cb(r.status().context("relay stop"));
        StopDecision d = on_stop(*r, relay_allowed);
        stop->write(encode_length_prefixed(encode_stop(d.reply)));
        if (!d.source) {
          stop->close_write();
          return cb(refusal_status(*d.reply.status).context("refused a relayed connection"));
        }
        cb(std::move(d));
      },
      kMaxRelayMessage);
}

}  // namespace noloco::p2p::relay
