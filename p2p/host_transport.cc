#include "p2p/host_transport.h"

#include <asio/write.hpp>

#include "p2p/host.h"

namespace noloco::p2p {
namespace {

using asio::ip::tcp;

class TcpTransport final : public ConnectionTransport {
 public:
  TcpTransport(tcp::socket socket, size_t read_buffer_size) : socket_(std::move(socket)), buf_(read_buffer_size) {
    asio::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
  }

  void read(ReadCallback cb) override {
    // The handler's owner (HostConnection) keeps this transport alive while a read is pending.
    socket_.async_read_some(asio::buffer(buf_), [this, cb = std::move(cb)](const asio::error_code& ec, size_t n) {
      if (ec) {
        cb(ec == asio::error::eof ? Status(StatusCode::kUnavailable, "connection closed by the peer")
                                  : Status(StatusCode::kUnavailable, "read failed: " + ec.message()),
           {});
        return;
      }
      cb(Status::Ok(), std::span<uint8_t>(buf_.data(), n));
    });
  }

  void write(ByteView data, WriteCallback cb) override {
    asio::async_write(socket_, asio::buffer(data.data(), data.size()),
                      [cb = std::move(cb)](const asio::error_code& ec, size_t) {
                        cb(ec ? Status(StatusCode::kUnavailable, "write failed: " + ec.message()) : Status::Ok());
                      });
  }

  void close() override {
    asio::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  tcp::socket socket_;
  Bytes buf_;
};

class StreamTransport final : public ConnectionTransport {
 public:
  explicit StreamTransport(std::shared_ptr<HostStream> stream) : stream_(std::move(stream)) {}
  ~StreamTransport() override { close(); }

  void read(ReadCallback cb) override {
    stream_->read_some([this, cb = std::move(cb)](Result<Bytes> r) {
      if (!r.ok()) return cb(r.status().context("relayed connection"), {});
      if (r->empty()) return cb(Status(StatusCode::kUnavailable, "relayed connection closed by the peer"), {});
      buf_ = std::move(*r);
      cb(Status::Ok(), std::span<uint8_t>(buf_.data(), buf_.size()));
    });
  }

  void write(ByteView data, WriteCallback cb) override {
    stream_->write(Bytes(data.begin(), data.end()), std::move(cb));
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    stream_->close_write();
  }

 private:
  std::shared_ptr<HostStream> stream_;
  Bytes buf_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<ConnectionTransport> make_tcp_transport(tcp::socket socket, size_t read_buffer_size) {
  return std::make_unique<TcpTransport>(std::move(socket), read_buffer_size);
}

std::unique_ptr<ConnectionTransport> make_stream_transport(std::shared_ptr<HostStream> stream) {
  return std::make_unique<StreamTransport>(std::move(stream));
}

}  // namespace noloco::p2p
