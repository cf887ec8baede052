// AllReduceService: READY gathering, ring wiring over yamux streams, redo among survivors
// (docs/protocols/allreduce.md). Only moves bytes and keeps time; the core checks every message.
#include "trainer/node/allreduce_service.h"

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <future>
#include <map>
#include <optional>
#include <set>

#include "common/log.h"
#include "p2p/host.h"
#include "trainer/node/allreduce_ring.h"

namespace noloco::node {
namespace {

using Clk = std::chrono::steady_clock;
constexpr size_t kMaxParked = 16;       // early ring streams waiting for our round
constexpr size_t kMaxReadySteps = 64;   // outer steps whose READY we remember

}  // namespace

struct AllReduceRound {
  explicit AllReduceRound(asio::io_context& io) : timer(io) {}
  std::vector<float> input;  // the caller's vector, kept for a redo
  uint64_t step = 0;
  std::vector<AllReduceMember> expected;  // others
  std::set<p2p::PeerId> dropped;          // unreachable: not waited for again
  // Sent ring bytes we refused (another encoding or chunk size, corrupt values): left out of
  // every later attempt of this round, whatever READY it sends, so a misconfigured or hostile
  // member cannot make the others redo the ring until the budget is spent.
  std::set<p2p::PeerId> refused;
  uint32_t attempt = 0;
  bool gathering = false;
  uint64_t gen = 0;  // callbacks of an older attempt compare this and do nothing
  Clk::time_point deadline, started, last_progress, gather_started;
  asio::steady_timer timer;
  std::optional<RingAllReduce> ring;
  std::vector<p2p::PeerId> members;
  std::shared_ptr<p2p::HostStream> out, in;
  size_t writes = 0;
  AllReduceOutcome outcome;
  std::promise<Result<std::vector<float>>> promise;
  bool finished = false;
};

class AllReduceServiceImpl : public std::enable_shared_from_this<AllReduceServiceImpl> {
 public:
  AllReduceServiceImpl(asio::io_context& io, std::shared_ptr<p2p::Host> host, AllReduceOptions o)
      : io(io), host(std::move(host)), opt(std::move(o)), run_tag(run_tag_of(opt.run_id)) {}

  void on_stream(std::shared_ptr<p2p::HostStream> s);
  void read_head(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<Bytes> head);
  void on_ready(const p2p::PeerId& peer, const AllReduceHeader& h);
  void on_ring_stream(std::shared_ptr<p2p::HostStream> s, Bytes head, const AllReduceHeader& h);

  void start(std::shared_ptr<AllReduceRound> r);
  void begin_attempt(uint32_t attempt);
  void send_ready(const AllReduceMember& m);
  void check_gathered();
  void form_ring();
  void adopt(std::shared_ptr<p2p::HostStream> s, Bytes head);
  void read_ring();
  void pump();
  void check_done();
  void arm_timer(Clk::time_point when);
  void on_timer();
  void abort_attempt(const std::string& why);
  void refuse_left(const Status& why);
  void finish(Result<std::vector<float>> r);
  void close();

  const p2p::PeerId& self() const { return host->peer_id(); }
  p2p::PeerId left() const { return r->members[(rank + r->members.size() - 1) % r->members.size()]; }

  asio::io_context& io;
  std::shared_ptr<p2p::Host> host;
  AllReduceOptions opt;
  uint64_t run_tag;
  bool closed = false;
  std::shared_ptr<AllReduceRound> r;  // the running call, if any
  size_t rank = 0;
  RoundId round_id;
  std::map<uint64_t, std::map<p2p::PeerId, uint32_t>> ready;  // step -> peer -> highest attempt
  struct Parked {
    std::shared_ptr<p2p::HostStream> s;
    Bytes head;
    AllReduceHeader h;
  };
  std::vector<Parked> parked;
};

// ---------------------------------------------------------------- inbound streams

void AllReduceServiceImpl::on_stream(std::shared_ptr<p2p::HostStream> s) {
  read_head(std::move(s), std::make_shared<Bytes>());
}

// Reads until the first header is complete, then routes the stream by its kind.
void AllReduceServiceImpl::read_head(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<Bytes> head) {
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  s->read_some([weak, s, head](Result<Bytes> chunk) {
    auto self = weak.lock();
    if (!self || self->closed || !chunk.ok() || chunk->empty()) return s->reset();
    append(*head, *chunk);
    if (head->size() < kAllReduceHeaderBytes) return self->read_head(s, head);
    auto h = decode_allreduce_header(*head);
    if (!h.ok() || h->round.run_tag != self->run_tag) {
      NLOG_WARN("allreduce: refused stream from {}: {}", s->remote_peer().to_string(),
                h.ok() ? "another run" : h.status().to_string());
      return s->reset();
    }
    if (h->kind == AllReduceKind::kReady) {
      s->close_write();
      return self->on_ready(s->remote_peer(), *h);
    }
    self->on_ring_stream(s, std::move(*head), *h);
  });
}

void AllReduceServiceImpl::on_ready(const p2p::PeerId& peer, const AllReduceHeader& h) {
  const uint64_t step = h.round.outer_step;
  if (r && step < r->step) return;  // a round we are past
  if (!ready.count(step) && ready.size() >= kMaxReadySteps) {
    if (step > ready.rbegin()->first) return;
    ready.erase(std::prev(ready.end()));
  }
  auto& at = ready[step];
  if (!at.count(peer) && at.size() >= kMaxAllReduceMembers) return;
  at[peer] = std::max(at[peer], h.round.attempt);
  if (!r || step != r->step || r->finished) return;
  r->dropped.erase(peer);  // it is alive after all
  // Someone gave up on our attempt already: follow it at once instead of waiting to notice.
  if (h.round.attempt > r->attempt) {
    r->outcome.failures.push_back("attempt " + std::to_string(r->attempt) + ": " + peer.to_string() +
                                  " moved on to attempt " + std::to_string(h.round.attempt));
    return begin_attempt(h.round.attempt);
  }
  check_gathered();
}

void AllReduceServiceImpl::on_ring_stream(std::shared_ptr<p2p::HostStream> s, Bytes head, const AllReduceHeader& h) {
  if (r && !r->finished && !r->gathering && !r->in && h.round == round_id && s->remote_peer() == left())
    return adopt(std::move(s), std::move(head));
  // Early: the left neighbour formed the ring before we did. Keep it until our round forms.
  if (r && h.round.outer_step < r->step) return s->reset();
  if (parked.size() >= kMaxParked) {
    parked.front().s->reset();
    parked.erase(parked.begin());
  }
  parked.push_back({std::move(s), std::move(head), h});
}

// ---------------------------------------------------------------- gathering

void AllReduceServiceImpl::start(std::shared_ptr<AllReduceRound> round) {
  if (closed) {
    round->finished = true;
    return round->promise.set_value(Status(StatusCode::kUnavailable, "allreduce: service closed"));
  }
  if (r && !r->finished) {
    round->finished = true;
    return round->promise.set_value(invalid_argument("allreduce: another call is running"));
  }
  r = std::move(round);
  ready.erase(ready.begin(), ready.lower_bound(r->step));
  begin_attempt(0);
}

void AllReduceServiceImpl::begin_attempt(uint32_t attempt) {
  ++r->gen;
  if (r->out) r->out->reset();
  if (r->in) r->in->reset();
  r->out.reset();
  r->in.reset();
  r->ring.reset();
  r->writes = 0;
  r->attempt = attempt;
  r->gathering = true;
  r->gather_started = Clk::now();
  r->outcome.attempts = attempt + 1;
  if (Clk::now() >= r->deadline) return abort_attempt("budget spent");
  for (const auto& m : r->expected)
    if (!r->dropped.count(m.peer) && !r->refused.count(m.peer)) send_ready(m);
  arm_timer(std::min(r->deadline, Clk::now() + std::chrono::duration_cast<Clk::duration>(opt.gather_timeout)));
  check_gathered();
}

// READY travels on a stream of its own: one header, then FIN. A peer we cannot reach is
// dropped from this call (a host that closed refuses the dial at once).
void AllReduceServiceImpl::send_ready(const AllReduceMember& m) {
  AllReduceHeader h;
  h.kind = AllReduceKind::kReady;
  h.round = {run_tag, r->step, r->attempt, 0};
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  auto round = r;
  const p2p::PeerId peer = m.peer;
  host->new_stream(m.addr.with_peer_id(m.peer), {std::string(kAllReduceProtocolId)},
                   [weak, round, peer, msg = encode_allreduce_header(h)](Result<std::shared_ptr<p2p::HostStream>> s) {
                     auto self = weak.lock();
                     if (!self || round->finished || self->r != round) return;
                     if (!s.ok()) {
                       NLOG_DEBUG("allreduce: READY to {} failed: {}", peer.to_string(), s.status().to_string());
                       round->dropped.insert(peer);
                       return self->check_gathered();
                     }
                     (*s)->write(msg);
                     (*s)->close_write();
                   });
}

void AllReduceServiceImpl::check_gathered() {
  if (!r || r->finished || !r->gathering) return;
  const auto& at = ready[r->step];
  for (const auto& m : r->expected) {
    if (r->dropped.count(m.peer) || r->refused.count(m.peer)) continue;
    auto it = at.find(m.peer);
    if (it == at.end() || it->second != r->attempt) return;
  }
  form_ring();
}

// The ring: ourselves and every expected member READY at this attempt, ordered by peer id.
void AllReduceServiceImpl::form_ring() {
  r->gathering = false;
  r->outcome.gather_seconds += std::chrono::duration<double>(Clk::now() - r->gather_started).count();
  r->members = {self()};
  const auto& at = ready[r->step];
  for (const auto& m : r->expected) {
    auto it = at.find(m.peer);
    if (!r->dropped.count(m.peer) && !r->refused.count(m.peer) && it != at.end() && it->second == r->attempt)
      r->members.push_back(m.peer);
  }
  std::sort(r->members.begin(), r->members.end());
  r->members.erase(std::unique(r->members.begin(), r->members.end()), r->members.end());
  rank = std::find(r->members.begin(), r->members.end(), self()) - r->members.begin();
  std::vector<std::string> ids;
  for (const auto& p : r->members) ids.push_back(p.to_string());
  round_id = {run_tag, r->step, r->attempt, members_tag_of(ids)};
  auto ring = RingAllReduce::create(
      {round_id, static_cast<uint32_t>(r->members.size()), static_cast<uint32_t>(rank), opt.chunk_elems, opt.encoding}, r->input);
  if (!ring.ok()) return finish(ring.status());
  r->ring.emplace(std::move(*ring));
  r->last_progress = Clk::now();
  if (r->members.size() == 1) return check_done();
  arm_timer(std::min(r->deadline, r->last_progress + std::chrono::duration_cast<Clk::duration>(opt.stall_timeout)));
  // The stream from the left neighbour may have arrived already.
  for (auto it = parked.begin(); it != parked.end();) {
    if (it->h.round == round_id && it->s->remote_peer() == left() && !r->in) {
      auto p = std::move(*it);
      it = parked.erase(it);
      adopt(std::move(p.s), std::move(p.head));
    } else if (it->h.round.outer_step < r->step ||
               (it->h.round.outer_step == r->step && it->h.round.attempt <= r->attempt)) {
      it->s->reset();
      it = parked.erase(it);
    } else {
      ++it;
    }
  }
  if (r->finished || r->gathering) return;  // adopt() may have aborted this attempt
  const p2p::PeerId right = r->members[(rank + 1) % r->members.size()];
  auto m = std::find_if(r->expected.begin(), r->expected.end(), [&](auto& e) { return e.peer == right; });
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  const uint64_t gen = r->gen;
  host->new_stream(m->addr.with_peer_id(right), {std::string(kAllReduceProtocolId)},
                   [weak, gen](Result<std::shared_ptr<p2p::HostStream>> s) {
                     auto self = weak.lock();
                     if (!self || !self->r || self->r->finished || self->r->gen != gen) return;
                     if (!s.ok()) return self->abort_attempt("right neighbour: " + s.status().to_string());
                     self->r->out = *s;
                     self->pump();
                   });
}

// ---------------------------------------------------------------- the ring

void AllReduceServiceImpl::adopt(std::shared_ptr<p2p::HostStream> s, Bytes head) {
  r->in = std::move(s);
  if (Status st = r->ring->feed(head); !st.ok()) return refuse_left(st);
  pump();
  check_done();
  if (!r->finished && !r->ring->received_all()) read_ring();
}

void AllReduceServiceImpl::read_ring() {
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  const uint64_t gen = r->gen;
  r->in->read_some([weak, gen](Result<Bytes> chunk) {
    auto self = weak.lock();
    if (!self || !self->r || self->r->finished || self->r->gen != gen) return;
    auto& round = *self->r;
    if (!chunk.ok()) return self->abort_attempt("left neighbour: " + chunk.status().to_string());
    if (chunk->empty()) return self->abort_attempt("left neighbour ended its stream early");
    if (Status st = round.ring->feed(*chunk); !st.ok()) return self->refuse_left(st);
    round.last_progress = Clk::now();
    if (self->opt.on_progress) self->opt.on_progress(round.ring->bytes_received());
    if (self->r->gen != gen) return;  // the hook may have closed the host
    self->pump();
    self->check_done();
    if (!round.finished && round.gen == gen && !round.ring->received_all()) self->read_ring();
  });
}

void AllReduceServiceImpl::pump() {
  if (!r->out) return;
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  const uint64_t gen = r->gen;
  while (r->writes < opt.writes_in_flight) {
    auto msg = r->ring->next_outgoing();
    // The ring can fail while building a message (an encoding error); say so now rather than
    // stalling until the budget is spent.
    if (!r->ring->error().ok()) return abort_attempt("our own ring: " + r->ring->error().to_string());
    if (!msg) break;
    ++r->writes;
    r->out->write(std::move(*msg), [weak, gen](Status st) {
      auto self = weak.lock();
      if (!self || !self->r || self->r->finished || self->r->gen != gen) return;
      --self->r->writes;
      if (!st.ok()) return self->abort_attempt("right neighbour: " + st.to_string());
      self->pump();
      self->check_done();
    });
  }
}

void AllReduceServiceImpl::check_done() {
  if (!r || r->finished || !r->ring || !r->ring->done() || r->writes > 0) return;
  if (r->out) r->out->close_write();
  if (r->in) r->in->close_write();
  r->outcome.members = r->members;
  r->outcome.bytes_sent += r->ring->bytes_sent();
  r->outcome.fp32_bytes_sent += r->ring->fp32_bytes_sent();
  r->outcome.bytes_received += r->ring->bytes_received();
  finish(r->ring->take());
}

// ---------------------------------------------------------------- time and failure

void AllReduceServiceImpl::arm_timer(Clk::time_point when) {
  std::weak_ptr<AllReduceServiceImpl> weak = weak_from_this();
  const uint64_t gen = r->gen;
  r->timer.expires_at(when);
  r->timer.async_wait([weak, gen](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || !self->r || self->r->finished || self->r->gen != gen) return;
    self->on_timer();
  });
}

void AllReduceServiceImpl::on_timer() {
  const auto now = Clk::now();
  if (r->gathering) {
    if (now >= r->deadline) return abort_attempt("budget spent while gathering");
    return form_ring();  // with whoever is READY
  }
  const auto stall = std::chrono::duration_cast<Clk::duration>(opt.stall_timeout);
  const std::string where = " (" + r->ring->progress() + ", " + std::to_string(r->writes) + " writes in flight)";
  if (now >= r->deadline) return abort_attempt("budget spent in the ring" + where);
  if (now - r->last_progress >= stall) return abort_attempt("no progress in the ring" + where);
  arm_timer(std::min(r->deadline, r->last_progress + stall));
}

void AllReduceServiceImpl::refuse_left(const Status& why) {
  r->refused.insert(left());
  // End our stream to the right gracefully rather than resetting it: what we wrote still
  // arrives, so a right neighbour that is the refused member learns the mismatch from our
  // bytes at once instead of waiting out its stall timeout.
  if (r->out) r->out->close_write();
  r->out.reset();
  abort_attempt("from the left neighbour " + left().to_string() + ": " + why.to_string() + " (left out of this round)");
}

void AllReduceServiceImpl::abort_attempt(const std::string& why) {
  if (!r || r->finished) return;
  r->outcome.failures.push_back("attempt " + std::to_string(r->attempt) + ": " + why);
  if (r->ring) {
    r->outcome.bytes_sent += r->ring->bytes_sent();
    r->outcome.fp32_bytes_sent += r->ring->fp32_bytes_sent();
    r->outcome.bytes_received += r->ring->bytes_received();
  }
  NLOG_DEBUG("allreduce step {} attempt {} aborted: {}", r->step, r->attempt, why);
  if (Clk::now() >= r->deadline || closed) {
    std::string all;
    for (const auto& f : r->outcome.failures) all += (all.empty() ? "" : "; ") + f;
    return finish(Status(StatusCode::kTimeout, "allreduce of outer step " + std::to_string(r->step) + " failed: " + all));
  }
  begin_attempt(r->attempt + 1);
}

void AllReduceServiceImpl::finish(Result<std::vector<float>> result) {
  if (!r || r->finished) return;
  r->finished = true;
  ++r->gen;
  r->timer.cancel();
  if (!result.ok()) {
    if (r->out) r->out->reset();
    if (r->in) r->in->reset();
  }
  r->out.reset();
  r->in.reset();
  r->ring.reset();
  r->promise.set_value(std::move(result));
}

void AllReduceServiceImpl::close() {
  if (closed) return;
  closed = true;
  host->remove_handler(std::string(kAllReduceProtocolId));
  for (auto& p : parked) p.s->reset();
  parked.clear();
  if (r) finish(Status(StatusCode::kUnavailable, "allreduce: service closed"));
}

// ---------------------------------------------------------------- public API

Result<std::shared_ptr<AllReduceService>> AllReduceService::create(asio::io_context& io, std::shared_ptr<p2p::Host> host,
                                                                   AllReduceOptions options) {
  if (!host) return invalid_argument("allreduce: no host");
  if (options.chunk_elems == 0 || options.chunk_elems > kMaxAllReduceChunkElems)
    return invalid_argument("allreduce: chunk size out of range");
  if (options.writes_in_flight == 0) return invalid_argument("allreduce: writes_in_flight must be at least 1");
  if (static_cast<uint8_t>(options.encoding) > static_cast<uint8_t>(codec::Mode::kInt4))
    return invalid_argument("allreduce: unknown value encoding");
  auto impl = std::make_shared<AllReduceServiceImpl>(io, host, std::move(options));
  std::weak_ptr<AllReduceServiceImpl> weak = impl;
  host->set_handler(std::string(kAllReduceProtocolId), [weak](std::shared_ptr<p2p::HostStream> s) {
    if (auto self = weak.lock()) self->on_stream(std::move(s));
    else s->reset();
  });
  return std::shared_ptr<AllReduceService>(new AllReduceService(std::move(impl)));
}

AllReduceService::~AllReduceService() { close(); }

void AllReduceService::close() {
  auto impl = impl_;
  asio::post(impl->io, [impl] { impl->close(); });
}

Result<AllReduceOutcome> AllReduceService::allreduce(std::vector<float>& data, uint64_t outer_step,
                                                     std::vector<AllReduceMember> members, Duration budget) {
  auto round = std::make_shared<AllReduceRound>(impl_->io);
  round->step = outer_step;
  round->started = Clk::now();
  round->deadline = round->started + std::chrono::duration_cast<Clk::duration>(budget);
  round->input = std::move(data);  // kept untouched: a redo starts again from it
  std::set<p2p::PeerId> seen{impl_->host->peer_id()};
  for (auto& m : members)
    if (seen.insert(m.peer).second) round->expected.push_back(std::move(m));
  if (round->expected.size() + 1 > kMaxAllReduceMembers) return invalid_argument("allreduce: too many members");
  auto fut = round->promise.get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, round] { impl->start(round); });
  // The network thread finishes every call by its deadline; the margin covers a busy thread.
  if (fut.wait_until(round->deadline + std::chrono::seconds(5)) != std::future_status::ready) {
    asio::post(impl->io, [impl, round] {
      if (impl->r == round) impl->finish(Status(StatusCode::kTimeout, "allreduce: network thread did not answer"));
    });
    if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready)  // data stays with the round
      return Status(StatusCode::kTimeout, "allreduce: network thread did not answer (vector lost)");
  }
  auto result = fut.get();  // the network thread no longer touches the round
  if (!result.ok()) {
    data = std::move(round->input);
    return result.status();
  }
  data = std::move(*result);
  AllReduceOutcome out = std::move(round->outcome);
  out.seconds = std::chrono::duration<double>(Clk::now() - round->started).count();
  return out;
}

}  // namespace noloco::node
