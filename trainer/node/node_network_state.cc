// NodeNetwork's state sync (/noloco/state/1.0.0, docs/protocols/state.md): serving our snapshot,
// downloading a peer's, and probing ranges of it for the cross-check. Byte layouts: state_wire.h.
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <utility>
#include <vector>

#include "common/log.h"
#include "p2p/framing.h"
#include "trainer/node/node_network_impl.h"
#include "trainer/node/state_wire.h"
#include "trainer/node/watched_read.h"

namespace noloco::node {

// ---------------------------------------------------------------- state sync

// One inbound state stream being served: counted by the limiter until it ends, and watched while
// an answer waits for the client to take it.
struct NodeNetworkImpl::StateServing {
  StateServing(asio::io_context& io, std::weak_ptr<NodeNetworkImpl> impl, p2p::PeerId peer)
      : watch(io), impl(std::move(impl)), peer(std::move(peer)) {}
  asio::steady_timer watch;
  std::weak_ptr<NodeNetworkImpl> impl;
  p2p::PeerId peer;
  bool ended = false;
  void end() {
    if (std::exchange(ended, true)) return;
    watch.cancel();
    if (auto self = impl.lock()) self->state_streams.release(peer);
  }
};

void NodeNetworkImpl::on_state_stream(std::shared_ptr<p2p::HostStream> s) {
  const p2p::PeerId peer = s->remote_peer();
  if (banned.count(peer)) return s->reset();
  const StateAdmit admit = state_streams.admit(peer);
  if (admit == StateAdmit::kRefuseAbuse) {
    // Our client never holds more (state_serve_limits.h): proof, not a slow link.
    NLOG_WARN("state stream from {} refused: {} already open", peer.to_string(), state_streams.open(peer));
    strike_local(peer, "more than " + std::to_string(opt.state_serve.per_peer) + " state streams at once");
    return s->reset();
  }
  if (admit == StateAdmit::kRefuseBusy) {
    NLOG_WARN("state stream from {} refused: {} state streams served", peer.to_string(), state_streams.total());
    return s->reset();
  }
  for (auto it = state_served.begin(); it != state_served.end();)  // forget streams that ended
    it = it->second.expired() ? state_served.erase(it) : std::next(it);
  state_served.emplace(peer, s);
  serve_state_request(std::move(s), std::make_shared<StateServing>(io, weak_from_this(), peer));
}

void NodeNetworkImpl::drop_streams_of(const p2p::PeerId& peer) {
  auto [from, to] = state_served.equal_range(peer);
  for (auto it = from; it != to; ++it)
    if (auto st = it->second.lock()) st->reset();
  state_served.erase(from, to);
  if (auto it = inbound_exchanges.find(peer); it != inbound_exchanges.end())
    if (auto st = it->second.lock()) st->reset();
}

// One request at a time: the next is read only once the stream has taken our answer, so a client
// that sends requests without reading the answers holds at most one answer beyond the stream's
// send buffer, and is reset when that one is not taken within exchange_idle_timeout.
void NodeNetworkImpl::serve_state_request(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<StateServing> serving) {
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  s->read_message(
      [weak, s, serving](Result<Bytes> msg) {
        auto self = weak.lock();
        if (!self) return;
        if (!msg.ok()) {
          serving->end();
          // A clean end between requests is the normal finish.
          if (msg.status().code() != StatusCode::kTruncated) s->reset();
          else s->close_write();
          return;
        }
        auto req = decode_state_request(*msg);
        if (!req.ok()) {
          serving->end();
          NLOG_WARN("bad state request from {}: {}", s->remote_peer().to_string(), req.status().to_string());
          self->strike_local(s->remote_peer(), req.status().to_string());
          return s->reset();
        }
        auto st = self->state;
        StateResponse resp = st ? answer_state_request(*req, self->opt.run_id, st->blob, st->sha256,
                                                       st->outer_step, st->inner_step)
                                : answer_state_request(*req, self->opt.run_id, {}, {}, 0, 0);
        Bytes out = p2p::encode_length_prefixed(encode_state_response(resp));
        self->st_out += out.size();
        serving->watch.expires_after(self->opt.exchange_idle_timeout);
        serving->watch.async_wait([ws = std::weak_ptr<p2p::HostStream>(s)](const asio::error_code& ec) {
          if (ec) return;
          if (auto st = ws.lock()) {
            NLOG_WARN("state stream of {}: answer not taken, reset", st->remote_peer().to_string());
            st->reset();  // a client that stopped reading: no strike (it may be stopped, or its link cut)
          }
        });
        s->write(std::move(out), [weak, s, serving](Status written) {
          serving->watch.cancel();
          auto self = weak.lock();
          if (!self || serving->ended) return;
          if (!written.ok()) return serving->end();
          self->serve_state_request(s, serving);
        });
      },
      4096);
}

namespace {

// A server whose record claims an outer step but that has no snapshot is between dropping its
// old snapshot and publishing the next: ask again after this long.
constexpr auto kNoStateWait = std::chrono::milliseconds(200);

// One fetch_state call's progress, shared by its closures on the network thread.
struct StateFetch {
  std::unique_ptr<StateDownload> dl;
  std::promise<Status> done;
  bool finished = false;
  int streams_left = 3;  // streams opened again after a break, before giving up
  int waits_left = 10;   // "no state yet" answers waited out (kNoStateWait apart) before giving up
  uint64_t chunk_bytes = 0;
  std::vector<uint64_t> stream_offsets;
  std::shared_ptr<p2p::HostStream> stream;  // the current one, reset when the call fails
  void finish(Status st) {
    if (finished) return;
    finished = true;
    done.set_value(std::move(st));
  }
};

StateFetched fetched_state(const p2p::PeerRecord& peer, StateFetch& f, uint64_t resumed_from) {
  StateFetched out;
  out.peer = peer.peer;
  out.outer_step = f.dl->outer_step();
  out.inner_step = f.dl->inner_step();
  out.resumed_from = resumed_from;
  out.chunk_bytes = f.chunk_bytes;
  out.stream_offsets = std::move(f.stream_offsets);
  out.blob = f.dl->take();
  return out;
}

// The network thread lets go of a fetch_state call (its timers, its stream, the closures' cycles
// in `drop`) before the training thread touches the download again. A failed call resets its
// stream at once: the server never sees us hold more than one.
void let_go(asio::io_context& io, std::vector<std::shared_ptr<asio::steady_timer>> timers,
            std::shared_ptr<StateFetch> f, bool failed, std::function<void()> drop) {
  auto released = std::make_shared<std::promise<void>>();
  auto released_fut = released->get_future();
  asio::post(io, [timers = std::move(timers), f, failed, drop = std::move(drop), released] {
    for (auto& t : timers) t->cancel();
    if (failed && f->stream) f->stream->reset();
    f->stream.reset();
    drop();
    released->set_value();
  });
  released_fut.wait_for(std::chrono::seconds(5));
}

}  // namespace

Result<StateFetched> NodeNetwork::fetch_state(const p2p::PeerRecord& peer, uint64_t max_bytes, Duration budget) {
  auto f = std::make_shared<StateFetch>();
  // Continue a download an earlier call left part-way, if it is for the same run and cap.
  if (partial_state_ && partial_state_->total() <= max_bytes) f->dl = std::move(partial_state_);
  else f->dl = std::make_unique<StateDownload>(impl_->opt.run_id, max_bytes);
  partial_state_.reset();
  const uint64_t resumed_from = f->dl->received();
  auto fut = f->done.get_future();
  auto impl = impl_;
  const auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(budget);
  auto timer = std::make_shared<asio::steady_timer>(impl->io);
  std::weak_ptr<NodeNetworkImpl> weak = impl;
  // One request/response round; a broken stream is reopened and the download resumes.
  auto open = std::make_shared<std::function<void()>>();
  auto round = std::make_shared<std::function<void(std::shared_ptr<p2p::HostStream>)>>();
  // Progress deadline: every request must get its whole answer within the stall timeout.
  auto stall = std::make_shared<asio::steady_timer>(impl->io);
  auto arm_stall = [stall, f, limit = impl->opt.state_stall_timeout] {
    stall->expires_after(limit);
    stall->async_wait([f](const asio::error_code& ec) {
      if (!ec) f->finish(timeout_error("state download stalled: no answer within the progress deadline"));
    });
  };
  auto again = std::make_shared<asio::steady_timer>(impl->io);
  *round = [weak, f, round, open, arm_stall, again](std::shared_ptr<p2p::HostStream> s) {
    auto self = weak.lock();
    if (!self || f->finished) return;
    if (f->dl->complete()) {
      s->close_write();
      return f->finish(Status::Ok());
    }
    arm_stall();
    s->write(p2p::encode_length_prefixed(encode_state_request(f->dl->next_request())));
    read_message_watched(
        s, kStateChunkBytes + 4096, self->opt.trickle, [weak, f, s, round, open, again](Result<Bytes> msg) {
          auto self = weak.lock();
          if (!self || f->finished) return;
          if (!msg.ok() && is_trickle(msg.status())) return f->finish(msg.status());  // struck by the caller
          if (!msg.ok()) return (*open)();  // resume on a new stream
          self->st_in += msg->size();
          auto resp = decode_state_response(*msg);
          if (!resp.ok()) return f->finish(resp.status());
          const uint64_t before = f->dl->received();
          if (resp->error == kNoStateYet && f->waits_left-- > 0) {
            again->expires_after(kNoStateWait);
            again->async_wait([f, s, round](const asio::error_code& ec) {
              if (!ec && !f->finished && *round) (*round)(s);
            });
            return;
          }
          Status st = f->dl->on_response(*resp);
          if (!st.ok() && resp->error == "snapshot changed" && before > 0) {
            // This peer serves another snapshot than the one we hold part of: start over from it.
            f->dl->restart();
            return (*round)(s);
          }
          if (!st.ok() && st.code() == StatusCode::kCorrupt) return (*open)();  // restarted from 0
          if (!st.ok()) return f->finish(st);
          f->chunk_bytes += f->dl->received() > before ? f->dl->received() - before : 0;
          (*round)(s);
        });
  };
  *open = [weak, f, round, peer, arm_stall]() {
    auto self = weak.lock();
    if (!self || f->finished) return;
    if (f->streams_left-- <= 0) return f->finish(unavailable("state download: too many broken streams"));
    arm_stall();
    self->open_stream_to(peer, std::string(kStateProtocolId),
                           [weak, f, round](Result<std::shared_ptr<p2p::HostStream>> r) {
                             if (f->finished) return;
                             if (!r.ok()) return f->finish(r.status());
                             f->stream_offsets.push_back(f->dl->received());
                             f->stream = *r;
                             (*round)(*r);
                           });
  };
  asio::post(impl->io, [timer, f, open, deadline] {
    timer->expires_at(deadline);
    timer->async_wait([f](const asio::error_code& ec) {
      if (!ec) f->finish(timeout_error("state download timed out"));
    });
    (*open)();
  });
  if (fut.wait_until(deadline + std::chrono::seconds(5)) != std::future_status::ready) {
    asio::post(impl->io, [f] { f->finish(timeout_error("state download timed out")); });
    fut.wait();
  }
  Status st = fut.get();
  let_go(impl->io, {timer, stall, again}, f, !st.ok(), [open, round] {
    *open = nullptr;
    *round = nullptr;
  });
  if (is_trickle(st)) impl->strike_local(peer.peer, "state answer " + st.message());
  if (!st.ok()) {
    // Keep what arrived (it is never handed out before the whole blob checks out).
    if (f->dl->received() > 0 && !f->dl->complete()) partial_state_ = std::move(f->dl);
    return st.context("state download from " + peer.peer.to_string());
  }
  return fetched_state(peer, *f, resumed_from);
}

uint64_t NodeNetwork::partial_state_bytes() const { return partial_state_ ? partial_state_->received() : 0; }

namespace {

// One probe_state call, on the network thread.
struct StateProbe {
  StateSample sample;
  std::vector<std::pair<uint64_t, uint32_t>> ranges;
  std::string run_id;
  std::shared_ptr<p2p::HostStream> stream;  // reset when the call ends (frees a pending read)
  std::shared_ptr<asio::steady_timer> stall;  // each answer within the progress deadline
  std::shared_ptr<asio::steady_timer> again;  // a "no state yet" waited out
  Duration stall_limit{};
  TrickleLimits trickle;
  std::promise<Status> done;
  bool finished = false;
  // A witness republishes its snapshot after each of its outer steps (several times a second at
  // the tiny preset) and has none for a moment while it builds the next. A probe takes the ranges
  // from whatever snapshot the witness holds at each answer: two snapshots of one trainer are as
  // good a reference as one, only the same-digest shortcut is lost (`mixed`). Before, a change
  // mid-probe failed it, witnesses rarely answered at that preset, and unchecked snapshots passed.
  int waits_left = 10;  // "no state yet" answers waited out, kNoStateWait apart
  bool mixed = false;   // answers came from more than one snapshot: sample.sha256 is left empty
  void finish(Status st) {
    if (finished) return;
    finished = true;
    done.set_value(std::move(st));
  }
};

void probe_next(const std::shared_ptr<StateProbe>& p, const std::shared_ptr<p2p::HostStream>& s) {
  if (p->finished) return;
  const size_t i = p->sample.chunks.size();
  if (i == p->ranges.size()) {
    s->close_write();
    return p->finish(Status::Ok());
  }
  p->stall->expires_after(p->stall_limit);
  p->stall->async_wait([p](const asio::error_code& ec) {
    if (!ec) p->finish(timeout_error("state probe stalled: no answer within the progress deadline"));
  });
  StateRequest req;
  req.run_id = p->run_id;
  // No want_sha256: the witness answers from its current snapshot instead of refusing a change.
  req.offset = p->ranges[i].first;
  req.max_len = p->ranges[i].second;
  s->write(p2p::encode_length_prefixed(encode_state_request(req)));
  read_message_watched(
      s, kStateChunkBytes + 4096, p->trickle, [p, s](Result<Bytes> msg) {
        if (p->finished) return;
        if (!msg.ok()) return p->finish(msg.status());
        auto resp = decode_state_response(*msg);
        if (!resp.ok()) return p->finish(resp.status());
        if (resp->error == kNoStateYet && p->waits_left-- > 0) {
          p->stall->cancel();
          p->again->expires_after(kNoStateWait);
          p->again->async_wait([p, s](const asio::error_code& ec) {
            if (!ec) probe_next(p, s);
          });
          return;
        }
        if (!resp->error.empty()) return p->finish(unavailable("peer refused: " + resp->error));
        const auto& want = p->ranges[p->sample.chunks.size()];
        if (resp->offset != want.first || resp->chunk.size() != want.second || resp->sha256.size() != 32)
          return p->finish(corrupt("state probe: answer does not match the request"));
        if (p->sample.chunks.empty()) {
          p->sample.sha256 = resp->sha256;
          p->sample.outer_step = resp->outer_step;
          p->sample.total_bytes = resp->total_bytes;
        } else if (resp->total_bytes != p->sample.total_bytes) {
          return p->finish(corrupt("state probe: the snapshot's size changed"));
        } else if (!p->mixed && resp->sha256 != p->sample.sha256) {
          p->mixed = true;
          p->sample.sha256.clear();
        }
        p->sample.chunks.push_back(std::move(resp->chunk));
        probe_next(p, s);
      });
}

}  // namespace

Result<StateSample> NodeNetwork::probe_state(const p2p::PeerRecord& peer,
                                             const std::vector<std::pair<uint64_t, uint32_t>>& ranges,
                                             Duration budget) {
  for (const auto& r : ranges)
    if (r.second == 0 || r.second > kStateChunkBytes) return invalid_argument("state probe: bad range length");
  auto p = std::make_shared<StateProbe>();
  p->sample.peer = peer.peer;
  p->ranges = ranges;
  p->run_id = impl_->opt.run_id;
  p->stall = std::make_shared<asio::steady_timer>(impl_->io);
  p->again = std::make_shared<asio::steady_timer>(impl_->io);
  p->stall_limit = impl_->opt.state_stall_timeout;
  p->trickle = impl_->opt.trickle;
  auto fut = p->done.get_future();
  auto impl = impl_;
  auto timer = std::make_shared<asio::steady_timer>(impl->io);
  std::weak_ptr<NodeNetworkImpl> weak = impl;
  asio::post(impl->io, [weak, p, timer, budget, peer] {
    auto self = weak.lock();
    if (!self) return p->finish(unavailable("network stopped"));
    timer->expires_after(budget);
    timer->async_wait([p](const asio::error_code& ec) {
      if (!ec) p->finish(timeout_error("state probe timed out"));
    });
    self->open_stream_to(peer, std::string(kStateProtocolId), [p](Result<std::shared_ptr<p2p::HostStream>> r) {
      if (!r.ok()) return p->finish(r.status());
      p->stream = *r;
      if (p->finished) return;
      probe_next(p, *r);
    });
  });
  const auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(budget) + std::chrono::seconds(5);
  if (fut.wait_until(deadline) != std::future_status::ready) {
    asio::post(impl->io, [p] { p->finish(timeout_error("state probe timed out")); });
    fut.wait();
  }
  Status st = fut.get();
  auto released = std::make_shared<std::promise<void>>();
  auto released_fut = released->get_future();
  asio::post(impl->io, [timer, p, released] {
    timer->cancel();
    p->stall->cancel();
    p->again->cancel();
    if (p->stream) p->stream->reset();
    p->stream.reset();
    released->set_value();
  });
  released_fut.wait_for(std::chrono::seconds(5));
  if (is_trickle(st)) impl->strike_local(peer.peer, "state probe answer " + st.message());
  if (!st.ok()) return st.context("state probe of " + peer.peer.to_string());
  return std::move(p->sample);
}

}  // namespace noloco::node
