// NodeNetwork's exchange protocol (/noloco/exchange/1.0.0, docs/protocols/exchange.md): serving
// inbound exchanges and calling a partner. The payload rules live in exchange_wire.h.
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "trainer/node/node_network_impl.h"
#include "trainer/node/watched_read.h"

namespace noloco::node {
namespace {

// Reads a whole exchange payload from a stream into a PayloadReader.
// on_header (optional) runs once, as soon as the header frame is accepted, before the tensors.
// on_progress (optional) runs at every chunk received. A sender that trickles (trickle_detector.h)
// gets its stream reset and `done` gets trickle_error().
void read_payload(std::shared_ptr<p2p::HostStream> stream, std::shared_ptr<PayloadReader> reader,
                  std::shared_ptr<TrickleDetector> trickle, std::function<void(Result<Payload>)> done,
                  std::function<void()> on_header = {}, std::function<void()> on_progress = {}) {
  stream->read_some([stream, reader, trickle, done, on_header, on_progress](Result<Bytes> chunk) mutable {
    if (!chunk.ok()) return done(chunk.status());
    if (on_progress) on_progress();
    if (!chunk->empty() && trickle->on_bytes(std::chrono::steady_clock::now(), chunk->size())) {
      stream->reset();
      return done(trickle_error(*trickle));
    }
    if (chunk->empty()) {
      if (Status st = reader->finish(); !st.ok()) return done(st);
      return done(reader->take());
    }
    if (Status st = reader->feed(*chunk); !st.ok()) {
      stream->reset();
      return done(st);
    }
    if (on_header && reader->header_accepted()) std::exchange(on_header, {})();
    if (reader->done()) return done(reader->take());
    read_payload(stream, reader, trickle, done, std::move(on_header), std::move(on_progress));
  });
}

// The idle deadline of an inbound exchange stream: it runs while we read the caller's payload or
// write our answer, re-armed by every chunk either way, and stops when both are over; when it
// fires the stream is reset (a slow link is no offence: no strike).
struct ExchangeWatch {
  ExchangeWatch(asio::io_context& io, const std::shared_ptr<p2p::HostStream>& s, Duration limit)
      : timer(io), stream(s), limit(limit) {}
  asio::steady_timer timer;
  std::weak_ptr<p2p::HostStream> stream;
  Duration limit;
  bool reading = true, writing = false;
  void touch() {
    if (!reading && !writing) return;
    timer.expires_after(limit);
    timer.async_wait([ws = stream](const asio::error_code& ec) {
      if (ec) return;
      if (auto st = ws.lock()) {
        NLOG_WARN("exchange stream of {} idle: reset", st->remote_peer().to_string());
        st->reset();
      }
    });
  }
  void settle() {
    if (!reading && !writing) timer.cancel();
  }
};

// Writes a payload frame by frame, the next one when the stream has taken the previous (its
// window and send buffer are the backpressure), so a model-sized payload is never copied whole;
// then half-closes. `done` gets the first write error, or OK.
// on_frame (optional) runs after every frame the stream took.
void write_frames(std::shared_ptr<p2p::HostStream> stream, std::shared_ptr<const WirePayload> payload, size_t next,
                  std::function<void(Status)> done, std::function<void(size_t)> on_frame = {}) {
  if (next == payload->frame_count()) {
    stream->close_write();
    if (done) done(Status::Ok());
    return;
  }
  Result<Bytes> frame = payload->frame(next);  // a spooled payload's frame is read back here
  if (!frame.ok()) {
    stream->reset();
    if (done) done(frame.status());
    return;
  }
  const size_t bytes = frame->size();
  stream->write(std::move(*frame), [stream, payload, next, done, on_frame, bytes](Status st) {
    if (!st.ok()) {
      if (done) done(st);
      return;
    }
    if (on_frame) on_frame(bytes);
    write_frames(stream, payload, next + 1, done, on_frame);
  });
}

}  // namespace
// ---------------------------------------------------------------- exchange

// The node core counts the strike (and decides on a ban) when the training thread drains events.
void NodeNetworkImpl::on_exchange_stream(std::shared_ptr<p2p::HostStream> s) {
  const p2p::PeerId peer = s->remote_peer();
  if (banned.count(peer)) return s->reset();
  // Memory a caller can pin: one payload being received per peer (an honest caller has one
  // exchange in flight to us; its newer stream replaces an older one), max_inbound_exchanges in
  // all, and none that stops moving for exchange_idle_timeout.
  if (auto old = inbound_exchanges.find(peer); old != inbound_exchanges.end()) {
    if (auto os = old->second.lock()) os->reset();
    inbound_exchanges.erase(old);
  }
  if (inbound_exchanges.size() >= opt.max_inbound_exchanges) {
    NLOG_WARN("exchange from {} refused: {} inbound exchanges in progress", peer.to_string(), inbound_exchanges.size());
    return s->reset();
  }
  inbound_exchanges[peer] = s;
  auto watch = std::make_shared<ExchangeWatch>(io, s, opt.exchange_idle_timeout);
  auto progress = [watch] { watch->touch(); };
  progress();
  auto reader = std::make_shared<PayloadReader>(expect_from(peer));
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto release = [weak, peer, ws = std::weak_ptr<p2p::HostStream>(s)] {
    auto self = weak.lock();
    if (!self) return;
    auto it = self->inbound_exchanges.find(peer);
    if (it != self->inbound_exchanges.end() && !it->second.owner_before(ws) && !ws.owner_before(it->second))
      self->inbound_exchanges.erase(it);
  };
  // Answer with our latest completed snapshot, whatever phase we are in (no barrier), as soon as
  // the caller's header checks out: the two payloads then cross the link at the same time
  // instead of one after the other. The caller's tensors are still verified in full below.
  auto answered = std::make_shared<bool>(false);
  auto answer = [weak, s, answered, watch, progress] {
    auto self = weak.lock();
    if (!self || *answered) return;
    watch->writing = true;
    progress();
    *answered = true;
    std::shared_ptr<const WirePayload> snapshot = self->exchange_payload;
    if (!snapshot) {
      auto refusal = std::make_shared<WirePayload>();
      const std::string_view why = self->fresh ? kRefusalNoPayloadYet : kRefusalPayloadBusy;
      refusal->frames.push_back(encode_payload(make_error_payload(std::string(why))));
      snapshot = std::move(refusal);
    }
    // A caller that stops reading our answer is reset too; the timer ends with the write.
    // Bytes count as sent once the stream has taken them: a reset stream sends no more.
    write_frames(
        s, std::move(snapshot), 0,
        [watch](Status) {
          watch->writing = false;
          watch->settle();
        },
        [weak, progress](size_t bytes) {
          progress();
          if (auto self = weak.lock()) self->ex_out += bytes;
        });
  };
  read_payload(
      s, reader, std::make_shared<TrickleDetector>(opt.trickle),
      [weak, s, peer, reader, answer, release, watch](Result<Payload> p) {
        auto self = weak.lock();
        if (!self) return;
        release();
        watch->reading = false;
        if (!p.ok()) watch->writing = false;  // the stream is reset: no answer goes out
        watch->settle();
        if (!p.ok()) {
          s->reset();
          // The caller went away, or the stream idled out (a slow link is no offence).
          if (p.status().code() == StatusCode::kUnavailable || p.status().code() == StatusCode::kTimeout) return;
          NLOG_WARN("refused exchange payload from {}: {}", peer.to_string(), p.status().to_string());
          self->strike_local(peer, p.status().to_string());
          return;
        }
        self->ex_in += reader->bytes_received();
        answer();  // an error header has no tensors: answer now if not yet
        if (p->header.error.empty()) {
          ++self->served;
          self->taint.vouch(peer);
          std::lock_guard lock(self->mu);
          auto it = self->inbox.find(peer);
          if (it == self->inbox.end() || it->second.payload.header.outer_step <= p->header.outer_step) {
            if (it == self->inbox.end() && self->inbox.size() >= self->opt.max_inbox) {
              // Full: drop the stalest entry to make room.
              auto oldest = std::min_element(self->inbox.begin(), self->inbox.end(), [](auto& a, auto& b) {
                return a.second.payload.header.outer_step < b.second.payload.header.outer_step;
              });
              self->inbox.erase(oldest);
            }
            self->inbox[peer] = ReceivedPayload{peer, std::move(*p)};
          }
        }
      },
      answer, progress);
}


void NodeNetworkImpl::next_try(std::shared_ptr<Attempt> a) {
  if (a->finished) return;
  if (stopping || a->tries_left <= 0 || Clk::now() >= a->deadline) return a->finish();
  auto partner = a->partner;
  if (!partner || banned.count(partner->peer)) return a->finish();
  --a->tries_left;
  const std::string who = partner->peer.to_string();
  const uint64_t gen = ++a->generation;
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto fail = [weak, a, gen, who](const std::string& why) {
    auto self = weak.lock();
    if (!self || a->finished || a->generation != gen) return;
    ++a->generation;  // later callbacks of this try are ignored
    if (a->stream) a->stream->reset();
    a->stream.reset();
    a->outcome.failures.push_back(who + ": " + why);
    self->next_try(a);
  };
  a->timer->expires_at(a->deadline);
  a->timer->async_wait([fail](const asio::error_code& ec) {
    if (!ec) fail("timed out");
  });
  const p2p::PeerId peer = partner->peer;
  open_stream_to(*partner, std::string(kExchangeProtocolId),
                   [weak, a, gen, fail, peer](Result<std::shared_ptr<p2p::HostStream>> r) {
                     auto self = weak.lock();
                     if (!self || a->finished || a->generation != gen) return;
                     if (!r.ok()) return fail(r.status().to_string());
                     auto s = *r;
                     a->stream = s;
                     // Counted as the stream takes each frame: an attempt abandoned midway
                     // (reset, timed out) put only part of its payload on the wire.
                     write_frames(s, a->payload, 0, {}, [weak](size_t bytes) {
                       if (auto self = weak.lock()) self->ex_out += bytes;
                     });
                     auto reader = std::make_shared<PayloadReader>(self->expect_from(peer));
                     auto trickle = std::make_shared<TrickleDetector>(self->opt.trickle);
                     read_payload(s, reader, trickle, [weak, a, gen, fail, peer, reader](Result<Payload> p) {
                       auto self = weak.lock();
                       if (!self || a->finished || a->generation != gen) return;
                       if (!p.ok()) {
                         if (p.status().code() != StatusCode::kUnavailable &&
                             p.status().code() != StatusCode::kTimeout)
                           self->strike_local(peer, p.status().to_string());
                         return fail(p.status().to_string());
                       }
                       self->ex_in += reader->bytes_received();
                       a->outcome.bytes_received += reader->bytes_received();
                       if (!p->header.error.empty()) {
                         a->outcome.no_payload_yet = p->header.error == kRefusalNoPayloadYet;
                         return fail("refused: " + p->header.error);
                       }
                       self->taint.vouch(peer);
                       a->outcome.partner = ReceivedPayload{peer, std::move(*p)};
                       a->finish();
                     });
                   });
}
ExchangeOutcome NodeNetwork::exchange_with(const p2p::PeerRecord& partner, std::shared_ptr<const WirePayload> payload,
                                           Duration budget) {
  auto a = std::make_shared<NodeNetworkImpl::Attempt>();
  a->partner = partner;
  a->payload = std::move(payload);
  a->started = Clk::now();
  a->deadline = a->started + std::chrono::duration_cast<Clk::duration>(budget);
  a->tries_left = 1;
  a->timer = std::make_shared<asio::steady_timer>(impl_->io);
  auto fut = a->promise.get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, a] { impl->next_try(a); });
  // The network thread always finishes an attempt by its deadline; the margin covers a stop().
  if (fut.wait_until(a->deadline + std::chrono::seconds(5)) != std::future_status::ready) {
    asio::post(impl->io, [a] { a->finish(); });
    ExchangeOutcome out;
    out.failures.push_back("network thread did not answer");
    return out;
  }
  return fut.get();
}

}  // namespace noloco::node
