#include "tools/linkemu/proxy_conn.h"

#include <asio/write.hpp>

#include <algorithm>
#include <cstdio>

namespace noloco::linkemu {

using asio::ip::tcp;

namespace {
constexpr size_t kReadSize = 64u << 10;

double seconds(Ns d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

ProxyConn::ProxyConn(Proxy& proxy, uint64_t id, size_t from, size_t to, tcp::socket client)
    : proxy_(proxy),
      id_(id),
      from_(from),
      to_(to),
      client_(std::move(client)),
      server_(proxy.io()),
      connect_timer_(proxy.io()),
      up_(proxy.io(), client_, server_, from, to),
      down_(proxy.io(), server_, client_, to, from),
      opened_at_(proxy.now()) {}

std::string ProxyConn::name() const {
  const auto& n = proxy_.topology().nodes;
  return "#" + std::to_string(id_) + " " + n[from_].name + "->" + n[to_].name;
}

void ProxyConn::start() {
  asio::error_code ignored;
  client_.set_option(tcp::no_delay(true), ignored);  // the model decides timing, not Nagle
  const double delay_ms = proxy_.model(from_, to_).params().delay_ms;
  connect_timer_.expires_after(std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1e3)));
  connect_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec && !self->closed_) self->connect_upstream();
  });
  read(up_);  // the dialer's first bytes start their trip now
}

void ProxyConn::connect_upstream() {
  const Endpoint& real = proxy_.topology().nodes[to_].listen;
  asio::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(real.ip, ec), real.port);
  if (ec) return abort("bad address " + real.to_string());
  // Connect from the dialer's own source address when this machine has it (any 127/8 address on
  // loopback), so the node behind the proxy sees who dials it, as it would without the proxy
  // (per-address limits count by it, docs/defences.md). Otherwise the kernel picks one.
  const auto source = asio::ip::make_address(proxy_.topology().nodes[from_].source, ec);
  if (!ec && source.is_loopback() && source.is_v4() == ep.address().is_v4()) {
    server_.open(ep.protocol(), ec);
    if (!ec) server_.bind(tcp::endpoint(source, 0), ec);
    if (ec) server_.close(ec);
  }
  server_.async_connect(ep, [self = shared_from_this(), real](const asio::error_code& ec) {
    if (self->closed_) return;
    if (ec) return self->abort("cannot reach " + real.to_string() + ": " + ec.message());
    asio::error_code ignored;
    self->server_.set_option(tcp::no_delay(true), ignored);
    self->connected_ = true;
    self->read(self->down_);
    self->write(self->up_);
  });
}

void ProxyConn::read(Pump& p) {
  if (closed_ || p.reading || p.eof || p.queued_bytes >= proxy_.topology().queue_limit_bytes) return;
  p.reading = true;
  p.buf.resize(kReadSize);
  p.src.async_read_some(asio::buffer(p.buf), [self = shared_from_this(), &p](const asio::error_code& ec, size_t n) {
    if (self->closed_) return;
    p.reading = false;
    if (ec == asio::error::eof) return self->on_eof(p);
    if (ec) return self->abort(std::string(&p == &self->up_ ? "dialer" : "node") + " side: " + ec.message());
    self->on_read(p, n);
  });
}

void ProxyConn::on_read(Pump& p, size_t n) {
  LinkModel& model = proxy_.model(p.link_from, p.link_to);
  const Ns now = proxy_.now();
  // A chunk leaves the token bucket whole, so reads are cut to the bucket depth.
  for (size_t off = 0; off < n;) {
    const size_t len = std::min(n - off, model.max_chunk());
    p.queue.push_back({model.deliver_at(len, now), std::vector<uint8_t>(p.buf.begin() + off, p.buf.begin() + off + len)});
    p.queued_bytes += len;
    off += len;
  }
  write(p);
  read(p);
}

void ProxyConn::on_eof(Pump& p) {
  p.eof = true;
  const Ns now = proxy_.now();
  const double delay_ms = proxy_.model(p.link_from, p.link_to).params().delay_ms;
  Ns fin = now + std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1e3));
  if (!p.queue.empty()) fin = std::max(fin, p.queue.back().when);
  p.queue.push_back({fin, {}});
  write(p);
}

void ProxyConn::write(Pump& p) {
  if (closed_ || p.writing || p.queue.empty() || (&p == &up_ && !connected_)) return;
  p.writing = true;
  const Chunk& head = p.queue.front();
  if (head.when > proxy_.now()) {
    p.timer.expires_at(proxy_.at(head.when));
    p.timer.async_wait([self = shared_from_this(), &p](const asio::error_code& ec) {
      if (self->closed_ || ec) return;
      p.writing = false;
      self->write(p);
    });
    return;
  }
  if (head.bytes.empty()) {  // the FIN's turn
    asio::error_code ignored;
    p.dst.shutdown(tcp::socket::shutdown_send, ignored);
    p.queue.pop_front();
    p.done = true;
    p.writing = false;
    if (up_.done && down_.done) close_gracefully();
    return;
  }
  asio::async_write(p.dst, asio::buffer(head.bytes), [self = shared_from_this(), &p](const asio::error_code& ec, size_t) {
    if (self->closed_) return;
    if (ec) return self->abort(std::string(&p == &self->up_ ? "node" : "dialer") + " side: " + ec.message());
    self->on_written(p);
  });
}

void ProxyConn::on_written(Pump& p) {
  const size_t n = p.queue.front().bytes.size();
  p.queue.pop_front();
  p.queued_bytes -= n;
  p.moved_bytes += n;
  p.writing = false;
  write(p);
  read(p);  // resumes a read paused at the high water mark
}

void ProxyConn::close_gracefully() {
  if (closed_) return;
  closed_ = true;
  // Logged before the sockets close, so whoever sees the close also finds the line.
  char line[256];
  std::snprintf(line, sizeof line, "close %s: both sides finished, %llu bytes ->, %llu bytes <-, %.3f s", name().c_str(),
                static_cast<unsigned long long>(up_.moved_bytes), static_cast<unsigned long long>(down_.moved_bytes),
                seconds(proxy_.now() - opened_at_));
  proxy_.log(line);
  asio::error_code ignored;
  client_.close(ignored);
  server_.close(ignored);
  connect_timer_.cancel();
  proxy_.forget(id_);  // may destroy *this once the handlers holding it have run
}

void ProxyConn::abort(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  char line[512];
  std::snprintf(line, sizeof line, "close %s: reset (%s), %llu bytes ->, %llu bytes <-, %.3f s", name().c_str(),
                why.c_str(), static_cast<unsigned long long>(up_.moved_bytes),
                static_cast<unsigned long long>(down_.moved_bytes), seconds(proxy_.now() - opened_at_));
  proxy_.log(line);
  asio::error_code ignored;
  for (tcp::socket* s : {&client_, &server_}) {
    if (!s->is_open()) continue;
    s->set_option(asio::socket_base::linger(true, 0), ignored);  // close sends RST
    s->close(ignored);
  }
  connect_timer_.cancel();
  up_.timer.cancel();
  down_.timer.cancel();
  proxy_.forget(id_);
}

}  // namespace noloco::linkemu
