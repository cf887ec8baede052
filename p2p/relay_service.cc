#include "p2p/relay_service.h"

#include "common/log.h"
#include "p2p/framing.h"
#include "p2p/host_connection.h"

namespace noloco::p2p::relay {
namespace {

TimePoint steady_now() { return std::chrono::steady_clock::now(); }

}  // namespace

std::shared_ptr<RelayService> RelayService::start(asio::io_context& io, const std::shared_ptr<Host>& host,
                                                  RelayOptions options) {
  auto svc = std::make_shared<RelayService>(io, host, std::move(options));
  std::weak_ptr<RelayService> weak = svc;
  host->set_handler(std::string(kHopProtocolId), [weak](std::shared_ptr<HostStream> s) {
    if (auto self = weak.lock()) {
      self->on_hop_stream(std::move(s));
    } else {
      s->reset();
    }
  });
  return svc;
}

RelayService::RelayService(asio::io_context& io, std::weak_ptr<Host> host, RelayOptions options)
    : io_(io), host_(std::move(host)), core_(std::move(options)) {}

void RelayService::on_hop_stream(std::shared_ptr<HostStream> s) {
  std::weak_ptr<RelayService> weak = weak_from_this();
  // A length over the cap or a broken varint resets the stream inside read_message.
  s->read_message(
      [weak, s](Result<Bytes> r) {
        auto self = weak.lock();
        auto host = self ? self->host_.lock() : nullptr;
        if (!self || !host || !r.ok()) return s->reset();
        // The per-IP reservation cap needs the address the reserving peer's connection came
        // from; a relayed connection (a reservation through another relay) has none.
        auto conn = s->connection();
        std::string from_ip;
        if (conn && conn->remote_addr() && !conn->remote_addr()->is_circuit())
          from_ip = conn->remote_addr()->host().value_or("");
        RelayHop::Decision d = self->core_.on_hop(s->remote_peer(), *r, steady_now(),
                                                  static_cast<uint64_t>(unix_time_seconds()), host->listen_addrs(),
                                                  from_ip);
        if (d.reply) {
          if (d.reply->status != RelayStatus::kOk) {
            NLOG_DEBUG("relay: refused {}: {}", s->remote_peer().to_string(), relay_status_name(*d.reply->status));
          }
          s->write(encode_length_prefixed(encode_hop(*d.reply)));
          s->close_write();
          return;
        }
        self->open_stop(s, std::move(d));
      },
      kMaxRelayMessage);
}

void RelayService::open_stop(std::shared_ptr<HostStream> source, RelayHop::Decision d) {
  auto host = host_.lock();
  if (!host) return source->reset();
  std::weak_ptr<RelayService> weak = weak_from_this();
  const uint64_t id = d.circuit;
  host->new_stream(*d.target, {std::string(kStopProtocolId)},
                   [weak, id, source, stop = *d.stop](Result<std::shared_ptr<HostStream>> r) {
                     auto self = weak.lock();
                     if (!self) return source->reset();
                     if (!r.ok()) return self->on_stop_reply(id, source, nullptr, r.status());
                     auto target = *r;
                     // A target that never answers cannot hold the circuit slot.
                     auto timer = std::make_shared<asio::steady_timer>(self->io_, kStopTimeout);
                     timer->async_wait([target](const asio::error_code& ec) {
                       if (!ec) target->reset();
                     });
                     target->write(encode_length_prefixed(encode_stop(stop)));
                     target->read_message(
                         [weak, id, source, target, timer](Result<Bytes> reply) {
                           timer->cancel();
                           auto self = weak.lock();
                           if (!self) return source->reset();
                           Result<StopMessage> msg =
                               reply.ok() ? decode_stop(*reply) : Result<StopMessage>(reply.status());
                           self->on_stop_reply(id, source, target, std::move(msg));
                         },
                         kMaxRelayMessage);
                   });
}

void RelayService::on_stop_reply(uint64_t id, std::shared_ptr<HostStream> source, std::shared_ptr<HostStream> target,
                                 Result<StopMessage> reply) {
  HopMessage answer = core_.on_stop_reply(id, reply, steady_now());
  source->write(encode_length_prefixed(encode_hop(answer)));
  if (answer.status != RelayStatus::kOk) {
    NLOG_DEBUG("relay: circuit {} -> target failed: {}", source->remote_peer().to_string(),
               reply.ok() ? "refused" : reply.status().to_string());
    source->close_write();
    if (target) target->reset();
    return;
  }
  bridge(id, std::move(source), std::move(target));
}

void RelayService::bridge(uint64_t id, std::shared_ptr<HostStream> source, std::shared_ptr<HostStream> target) {
  Live live{source, target, nullptr};
  if (auto deadline = core_.deadline(id)) {
    live.timer = std::make_unique<asio::steady_timer>(io_, *deadline);
    std::weak_ptr<RelayService> weak = weak_from_this();
    live.timer->async_wait([weak, id](const asio::error_code& ec) {
      auto self = weak.lock();
      if (!ec && self && self->core_.expired(id, steady_now())) self->close_circuit(id, true);
    });
  }
  live_.emplace(id, std::move(live));
  pump(id, source, target, Direction::kSourceToTarget);
  pump(id, target, source, Direction::kTargetToSource);
}

// Moves one chunk at a time: the next read waits until the other side took the last write, so
// a slow reader slows the writer down through both streams' windows.
void RelayService::pump(uint64_t id, std::shared_ptr<HostStream> from, std::shared_ptr<HostStream> to, Direction dir) {
  std::weak_ptr<RelayService> weak = weak_from_this();
  from->read_some([weak, id, from, to, dir](Result<Bytes> r) {
    auto self = weak.lock();
    if (!self) {
      from->reset();
      to->reset();
      return;
    }
    auto it = self->live_.find(id);
    if (it == self->live_.end()) return;
    if (!r.ok()) return self->close_circuit(id, false);
    if (r->empty()) {  // half-close travels through; the circuit ends when both sides have
      to->close_write();
      if (--it->second.open_directions == 0) self->close_circuit(id, false);
      return;
    }
    RelayHop::DataVerdict v = self->core_.on_data(id, dir, r->size(), steady_now());
    r->resize(v.forward);
    if (v.close) {
      if (r->empty()) return self->close_circuit(id, true);
      to->write(std::move(*r), [weak, id](Status) {
        if (auto s = weak.lock()) s->close_circuit(id, true);
      });
      return;
    }
    to->write(std::move(*r), [weak, id, from, to, dir](Status st) {
      auto s = weak.lock();
      if (!s) return;
      if (!st.ok()) return s->close_circuit(id, false);
      s->pump(id, from, to, dir);
    });
  });
}

void RelayService::close_circuit(uint64_t id, bool at_limit) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  Live live = std::move(it->second);
  live_.erase(it);
  core_.on_circuit_closed(id);
  if (at_limit) {
    ++closed_at_limit_;
    NLOG_DEBUG("relay: circuit {} closed at its limit", id);
  }
  if (live.timer) live.timer->cancel();
  live.source->reset();
  live.target->reset();
}

}  // namespace noloco::p2p::relay
