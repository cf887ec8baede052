#include "tools/linkemu/proxy.h"

#include <algorithm>

#include "tools/linkemu/proxy_conn.h"

namespace noloco::linkemu {

using asio::ip::tcp;

namespace {

// Each ordered pair gets its own stream of random numbers, fixed by the topology seed and the
// pair's names (so adding a node does not reshuffle the other links).
uint64_t link_seed(uint64_t seed, const std::string& from, const std::string& to) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over "from->to"
  for (char c : from + "->" + to) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

bool same_nodes(const std::vector<NodeSpec>& a, const std::vector<NodeSpec>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    // A proxy port of 0 was bound to some port: a reload of the same file still matches.
    NodeSpec x = a[i], y = b[i];
    if (x.proxy.port == 0 || y.proxy.port == 0) x.proxy.port = y.proxy.port = 0;
    if (!(x == y)) return false;
  }
  return true;
}

}  // namespace

Proxy::Proxy(asio::io_context& io, Topology topology, LogSink log)
    : io_(io), topology_(std::move(topology)), log_(std::move(log)), start_(std::chrono::steady_clock::now()) {
  const auto& nodes = topology_.nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (size_t j = 0; j < nodes.size(); ++j) {
      links_.push_back(std::make_unique<Link>(io_, topology_.link(i, j),
                                              link_seed(topology_.seed, nodes[i].name, nodes[j].name), Ns(0)));
    }
  }
}

Proxy::~Proxy() { stop(); }

Status Proxy::start() {
  for (size_t i = 0; i < topology_.nodes.size(); ++i) {
    const Endpoint& p = topology_.nodes[i].proxy;
    asio::error_code ec;
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    tcp::endpoint ep(asio::ip::make_address(p.ip, ec), p.port);
    if (!ec) acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable,
                    "cannot listen on " + p.to_string() + " for " + topology_.nodes[i].name + ": " + ec.message());
    }
    topology_.nodes[i].proxy.port = acceptor->local_endpoint().port();
    acceptors_.push_back(std::move(acceptor));
  }
  for (size_t i = 0; i < acceptors_.size(); ++i) accept_loop(i);
  for (size_t l = 0; l < links_.size(); ++l) schedule_reset(l);
  return Status::Ok();
}

size_t Proxy::max_queued_bytes() const {
  size_t most = 0;
  for (const auto& [id, c] : conns_) most = std::max(most, c->max_queued_bytes());
  return most;
}

Endpoint Proxy::proxy_endpoint(size_t i) const { return topology_.nodes.at(i).proxy; }

void Proxy::accept_loop(size_t node) {
  acceptors_[node]->async_accept([this, node](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) on_accept(node, std::move(socket));
    accept_loop(node);
  });
}

void Proxy::on_accept(size_t to, tcp::socket socket) {
  asio::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;
  const std::string ip = remote.address().to_string();
  auto from = topology_.node_by_source(ip);
  // One listening socket serves every dialer, so "refuse" means accept and reset at once.
  auto refuse = [&](const std::string& why) {
    log("refuse " + remote.address().to_string() + ":" + std::to_string(remote.port()) + " -> " +
        topology_.nodes[to].name + ": " + why);
    asio::error_code ignored;
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  };
  if (!from) return refuse("unknown source IP (not a node's source)");
  if (*from == to) return refuse("a node dialing itself through the proxy");
  if (model(*from, to).params().down || model(to, *from).params().down) return refuse("link down");
  if (conns_.size() >= kMaxConnections) return refuse("too many open connections");
  const uint64_t id = next_id_++;
  auto conn = std::make_shared<ProxyConn>(*this, id, *from, to, std::move(socket));
  conns_.emplace(id, conn);
  log("open #" + std::to_string(id) + " " + topology_.nodes[*from].name + "->" + topology_.nodes[to].name + " from " +
      ip + ":" + std::to_string(remote.port()) + " via " + topology_.nodes[to].proxy.to_string() + " to " +
      topology_.nodes[to].listen.to_string());
  conn->start();
}

// A connection is reset by the reset events of the direction from its dialer.
void Proxy::schedule_reset(size_t l) {
  Link& link = *links_[l];
  link.reset_timer.cancel();
  auto next = link.model.next_reset_after(now());
  if (!next) return;
  link.reset_timer.expires_at(at(*next));
  link.reset_timer.async_wait([this, l](const asio::error_code& ec) {
    if (ec || stopped_) return;
    reset_link(l, "reset event");
    schedule_reset(l);
  });
}

void Proxy::reset_link(size_t l, const std::string& why) {
  const size_t n = topology_.nodes.size();
  std::vector<std::shared_ptr<ProxyConn>> hit;
  for (auto& [id, c] : conns_) {
    if (c->from() * n + c->to() == l) hit.push_back(c);
  }
  for (auto& c : hit) c->abort(why);
}

void Proxy::reset_down_links() {
  std::vector<std::shared_ptr<ProxyConn>> hit;
  for (auto& [id, c] : conns_) {
    if (model(c->from(), c->to()).params().down || model(c->to(), c->from()).params().down) hit.push_back(c);
  }
  for (auto& c : hit) c->abort("link down");
}

Status Proxy::apply(Topology t) {
  if (!same_nodes(topology_.nodes, t.nodes)) {
    return invalid_argument("the node list changed (names, addresses); restart linkemu to change nodes");
  }
  const size_t n = topology_.nodes.size();
  size_t changed = 0;
  for (size_t l = 0; l < links_.size(); ++l) {
    const LinkParams& p = t.links[l];
    if (links_[l]->model.params() == p) continue;
    ++changed;
    links_[l]->model.reconfigure(p, now());
    if (!stopped_) schedule_reset(l);
  }
  t.nodes = topology_.nodes;  // keep the bound ports
  topology_ = std::move(t);
  size_t down = 0;
  for (size_t l = 0; l < links_.size(); ++l) down += (l / n != l % n && links_[l]->model.params().down) ? 1 : 0;
  log("reload: " + std::to_string(changed) + " link directions changed, " + std::to_string(down) + " down");
  reset_down_links();
  return Status::Ok();
}

void Proxy::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  for (auto& a : acceptors_) a->close(ignored);
  for (auto& l : links_) l->reset_timer.cancel();
  auto conns = conns_;  // abort() removes entries
  for (auto& [id, c] : conns) c->abort("linkemu stopping");
}

}  // namespace noloco::linkemu
