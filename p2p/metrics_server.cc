// MetricsServer (metrics_server.h): accept loop, one short-lived session per connection.
#include "p2p/metrics_server.h"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/metrics_http.h"

namespace noloco::p2p {

using asio::ip::tcp;

class MetricsSession;

class MetricsServerImpl : public std::enable_shared_from_this<MetricsServerImpl> {
 public:
  MetricsServerImpl(std::vector<metrics::HttpRoute> routes, MetricsServerOptions o)
      : routes_(std::move(routes)), opt_(o), acceptor_(io_) {}

  Status listen(const metrics::ListenAddress& a);
  void accept_loop();
  void stop();
  void drop(const std::shared_ptr<MetricsSession>& s) { sessions_.erase(s); }

  asio::io_context io_;
  std::vector<metrics::HttpRoute> routes_;
  MetricsServerOptions opt_;
  tcp::acceptor acceptor_;
  tcp::endpoint bound_;
  std::set<std::shared_ptr<MetricsSession>> sessions_;  // network thread only
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

// One connection: read the request head, write the response, close; closed anyway at the deadline.
class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(MetricsServerImpl& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(server.io_), parser_(server.opt_.max_request_bytes) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(server_.opt_.deadline);
    timer_.async_wait([self](const asio::error_code& ec) {
      if (!ec) self->close();
    });
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.drop(shared_from_this());
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](const asio::error_code& ec, size_t n) {
      if (self->closed_) return;
      if (ec) return self->close();
      const auto st = self->parser_.feed(std::string_view(self->buf_.data(), n));
      if (st == metrics::HttpRequestParser::State::kNeedMore) return self->read();
      self->write();
    });
  }

  void write() {
    out_ = metrics::respond(parser_, server_.routes_);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self](const asio::error_code& ec, size_t) {
      if (ec || self->closed_) return self->close();
      // Lingering close: stop sending, then discard what the client still sends until it hangs
      // up (or the deadline), so that unread request bytes cannot reset away our response.
      asio::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      self->drain();
    });
  }

  void drain() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](const asio::error_code& ec, size_t) {
      if (self->closed_) return;
      if (ec) return self->close();
      self->drain();
    });
  }

  MetricsServerImpl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  metrics::HttpRequestParser parser_;
  std::array<char, 2048> buf_{};
  std::string out_;
  bool closed_ = false;
};

Status MetricsServerImpl::listen(const metrics::ListenAddress& a) {
  asio::error_code ec;
  const auto ip = asio::ip::make_address(a.host, ec);
  if (ec) return invalid_argument("metrics address: '" + a.host + "' is not an IP address");
  const tcp::endpoint ep(ip, a.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) bound_ = acceptor_.local_endpoint(ec);
  if (ec) return io_error("metrics: cannot listen on " + a.host + ":" + std::to_string(a.port) + ": " + ec.message());
  return Status::Ok();
}

void MetricsServerImpl::accept_loop() {
  auto self = shared_from_this();
  acceptor_.async_accept([self](const asio::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || self->stopped_) return;
    if (!ec) {
      if (self->sessions_.size() >= self->opt_.max_connections) {
        asio::error_code ignored;
        socket.close(ignored);  // over the cap: refuse by closing, keep the ones we have
      } else {
        auto s = std::make_shared<MetricsSession>(*self, std::move(socket));
        self->sessions_.insert(s);
        s->start();
      }
    }
    self->accept_loop();
  });
}

void MetricsServerImpl::stop() {
  if (stopped_.exchange(true)) return;
  asio::post(io_, [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
    auto open = sessions_;  // close() erases from sessions_
    for (const auto& s : open) s->close();
  });
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& address,
                                                            std::function<std::string()> render,
                                                            MetricsServerOptions options) {
  return start(address, std::vector<metrics::HttpRoute>{{"/metrics", metrics::kExpositionContentType, std::move(render)}},
               options);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& address,
                                                            std::vector<metrics::HttpRoute> routes,
                                                            MetricsServerOptions options) {
  NOLOCO_ASSIGN_OR_RETURN(metrics::ListenAddress a, metrics::parse_listen_address(address));
  if (options.max_connections == 0 || options.deadline.count() <= 0 || options.max_request_bytes < 64)
    return invalid_argument("metrics server: limits must be positive");
  if (routes.empty()) return invalid_argument("metrics server: no routes");
  auto impl = std::make_shared<MetricsServerImpl>(std::move(routes), options);
  NOLOCO_RETURN_IF_ERROR(impl->listen(a));
  impl->accept_loop();
  // The thread runs until the listener and every session are closed (stop()).
  impl->thread_ = std::thread([impl_raw = impl.get()] {
    try {
      impl_raw->io_.run();
    } catch (const std::exception& e) {
      NLOG_ERROR("metrics server: {}", e.what());
    }
  });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (impl_) impl_->stop();
}

std::string MetricsServer::bound_address() const {
  const auto& ep = impl_->bound_;
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

}  // namespace noloco::p2p
