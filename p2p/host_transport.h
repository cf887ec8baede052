// Internal to the host: the byte pipe under one connection. A connection's upgrade (Noise,
// yamux) runs the same over a TCP socket and over a relayed stream (circuit relay v2, where the
// "socket" is a stream of our connection to the relay), so HostConnection reads and writes
// through this interface only.
#pragma once

#include <asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <span>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

class HostStream;

class ConnectionTransport {
 public:
  // Bytes read (a view valid only during the call), or why the pipe ended (kUnavailable).
  using ReadCallback = std::function<void(Status, std::span<uint8_t>)>;
  using WriteCallback = std::function<void(Status)>;

  virtual ~ConnectionTransport() = default;
  // One read at a time; cb runs later (never inside the call).
  virtual void read(ReadCallback cb) = 0;
  // Writes all of `data`, which must stay valid until cb; one write at a time.
  virtual void write(ByteView data, WriteCallback cb) = 0;
  // Ends the pipe (pending callbacks may still run, with an error). Idempotent.
  virtual void close() = 0;
};

std::unique_ptr<ConnectionTransport> make_tcp_transport(asio::ip::tcp::socket socket, size_t read_buffer_size);
// The relayed stream carries the whole connection; closing half-closes it (the relay then
// closes the other leg) and stops reading.
std::unique_ptr<ConnectionTransport> make_stream_transport(std::shared_ptr<HostStream> stream);

}  // namespace noloco::p2p
