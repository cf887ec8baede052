#include "p2p/probe_tool.h"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <map>

#include "p2p/autonat.h"
#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/time_service.h"

namespace noloco::p2p {
namespace {

using asio::ip::tcp;

// Whether a socket without SO_REUSEPORT can bind `addr`'s port: a node listening there (with or
// without SO_REUSEPORT) makes this fail, so the probe never shares the node's port with it (the
// kernel would hand it half of the node's inbound connections).
bool port_free(asio::io_context& io, const Multiaddr& addr) {
  const auto port = addr.tcp_port();
  if (!port || *port == 0 || !addr.host()) return true;
  asio::error_code ec;
  const auto ip = asio::ip::make_address(*addr.host(), ec);
  if (ec) return true;  // Host::listen reports the bad address
  tcp::acceptor a(io);
  a.open(ip.is_v6() ? tcp::v6() : tcp::v4(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);  // a TIME_WAIT socket is no owner
  if (!ec) a.bind(tcp::endpoint(ip, *port), ec);
  return !ec;
}

bool has(const std::vector<std::string>& list, std::string_view what) {
  return std::find(list.begin(), list.end(), what) != list.end();
}

// One probe: each peer goes connect -> ping -> identify -> time -> AutoNAT, all peers at once.
class Probe {
 public:
  Probe(asio::io_context& io, std::shared_ptr<Host> host, const ProbeToolOptions& opt, Multiaddr listened)
      : host_(std::move(host)), listened_(std::move(listened)), deadline_(io) {
    for (const auto& a : opt.peers) {
      ProbedPeer p;
      p.addr = a;
      peers_.push_back(std::move(p));
    }
    ids_.resize(peers_.size());
    done_.assign(peers_.size(), false);
    left_ = peers_.size();
    host_->set_identify_listener([this](const PeerId& p, const IdentifyInfo&) {
      auto it = awaiting_identify_.find(p);
      if (it == awaiting_identify_.end()) return;
      auto next = std::move(it->second);
      awaiting_identify_.erase(it);
      next();
    });
    deadline_.expires_after(opt.budget);
    deadline_.async_wait([this](const asio::error_code& ec) {
      if (!ec) on_deadline();
    });
  }

  void start() {
    if (peers_.empty()) return close();
    for (size_t i = 0; i < peers_.size(); ++i) connect(i);
  }
  std::vector<ProbedPeer> take() { return std::move(peers_); }

 private:
  void connect(size_t i) {
    host_->connect_from_listen_port(peers_[i].addr, [this, i](Result<PeerId> r) {
      if (done_[i]) return;
      if (r.ok()) {
        peers_[i].from_listen_port = true;
        return connected(i, *r);
      }
      // A /dns address, or a dial the listen port could not make: an ordinary dial still
      // tells reachability of the peer and its clock; the NAT rule then has no port to compare.
      host_->connect(peers_[i].addr, [this, i](Result<PeerId> r2) {
        if (done_[i]) return;
        if (!r2.ok()) {
          peers_[i].error = r2.status().message();
          return finish(i);
        }
        connected(i, *r2);
      });
    });
  }

  void connected(size_t i, const PeerId& id) {
    ids_[i] = id;
    host_->ping(id, [this, i, id](Result<Duration> rtt) {
      if (done_[i]) return;
      if (rtt.ok()) peers_[i].rtt_ms = std::chrono::duration<double, std::milli>(*rtt).count();
      else peers_[i].ping_error = rtt.status().message();
      if (host_->peer_info(id)) return identified(i, id);
      awaiting_identify_[id] = [this, i, id] {
        if (!done_[i]) identified(i, id);
      };
    });
  }

  void identified(size_t i, const PeerId& id) {
    ProbedPeer& p = peers_[i];
    const auto info = host_->peer_info(id);
    p.identified = info.has_value();
    if (info) {
      p.agent = info->agent_version;
      p.observed = info->observed_addr;
      p.offers_time = has(info->protocols, timeproto::kTimeProtocolId);
      p.offers_autonat = has(info->protocols, autonat::kAutonatProtocolId);
    }
    if (!p.offers_time) return ask_autonat(i, id);
    timeproto::query_time(*host_, id, [this, i, id](Result<timeproto::ClockSample> s) {
      if (done_[i]) return;
      if (s.ok()) peers_[i].clock = *s;
      else peers_[i].clock_error = s.status().message();
      ask_autonat(i, id);
    });
  }

  // Our listen port on the IP this peer sees us at (what a NAT forwards, if anything), and the
  // listen address itself when it is a specific IP. The server dials only its observed IP.
  std::vector<Multiaddr> dialback_addrs(const ProbedPeer& p) const {
    std::vector<Multiaddr> out;
    const auto port = listened_.tcp_port();
    if (p.observed && p.observed->host() && port)
      if (auto a = Multiaddr::from_ip_tcp(*p.observed->host(), *port); a.ok()) out.push_back(*a);
    if (listened_.host() && *listened_.host() != "0.0.0.0" && *listened_.host() != "::") out.push_back(listened_);
    return out;
  }

  void ask_autonat(size_t i, const PeerId& id) {
    if (!peers_[i].offers_autonat) return finish(i);
    Bytes request = autonat::Client::request(host_->peer_id(), dialback_addrs(peers_[i]));
    host_->new_stream(id, {std::string(autonat::kAutonatProtocolId)},
                      [this, i, request](Result<std::shared_ptr<HostStream>> s) {
                        if (done_[i]) return;
                        if (!s.ok()) {
                          peers_[i].dialback_error = s.status().message();
                          return finish(i);
                        }
                        auto stream = *s;
                        stream->write(encode_length_prefixed(request));
                        stream->close_write();
                        stream->read_message(
                            [this, i, stream](Result<Bytes> body) {
                              if (done_[i]) return;
                              auto m = body.ok() ? autonat::decode_message(*body) : Result<autonat::Message>(body.status());
                              if (!m.ok()) peers_[i].dialback_error = m.status().message();
                              else if (!m->response) peers_[i].dialback_error = "the answer is not a DIAL_RESPONSE";
                              else peers_[i].dialback = *m->response;
                              finish(i);
                            },
                            autonat::kMaxAutonatMessage);
                      });
  }

  void finish(size_t i) {
    if (done_[i]) return;
    done_[i] = true;
    if (--left_ == 0) close();
  }

  void on_deadline() {
    for (size_t i = 0; i < peers_.size(); ++i) {
      if (done_[i]) continue;
      ProbedPeer& p = peers_[i];
      const std::string why = "timed out";
      if (!ids_[i]) p.error = why;
      else if (!p.identified) p.ping_error = p.ping_error.empty() ? why + " (identify)" : p.ping_error;
      else if (p.offers_time && !p.clock && p.clock_error.empty()) p.clock_error = why;
      else if (p.offers_autonat && !p.dialback && p.dialback_error.empty()) p.dialback_error = why;
      done_[i] = true;
    }
    left_ = 0;
    close();
  }

  void close() {
    deadline_.cancel();
    host_->close();
  }

  std::shared_ptr<Host> host_;
  Multiaddr listened_;
  asio::steady_timer deadline_;
  std::vector<ProbedPeer> peers_;
  std::vector<std::optional<PeerId>> ids_;
  std::vector<bool> done_;
  size_t left_ = 0;
  std::map<PeerId, std::function<void()>> awaiting_identify_;
};

}  // namespace

Result<ProbeReport> run_probe_tool(const Identity& identity, const ProbeToolOptions& options) {
  asio::io_context io;
  ProbeReport report;
  Multiaddr listen = options.listen.without_peer_id();
  if (!port_free(io, listen)) {
    report.temporary_port = true;
    NOLOCO_ASSIGN_OR_RETURN(listen, Multiaddr::from_ip_tcp(listen.host().value_or("0.0.0.0"), 0));
  }
  HostOptions ho = options.host;
  ho.hole_punch = true;  // SO_REUSEPORT on the listener, so dials can leave from its port
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<Host> host, Host::create(io, identity, ho));
  NOLOCO_ASSIGN_OR_RETURN(Multiaddr bound, host->listen(listen));
  report.listened = bound.without_peer_id();
  Probe probe(io, host, options, report.listened);
  probe.start();
  try {
    io.run();
  } catch (const std::exception& e) {
    return internal_error(std::string("probe: ") + e.what());
  }
  report.peers = probe.take();
  return report;
}

}  // namespace noloco::p2p
