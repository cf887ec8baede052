#include "tools/bench/p2p_throughput_noloco.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "p2p/host.h"
#include "p2p/pnet.h"

namespace noloco::bench {
namespace {

constexpr const char* kBenchProtocol = "/noloco/bench/1.0.0";  // same as tools/interop/node.mjs
constexpr size_t kChunk = 1u << 20;

// Receiver: counts bytes until FIN, then answers the count (and tells `done`, if set).
void serve_bench(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<uint64_t> count,
                 std::function<void(uint64_t)> done = {}) {
  s->read_some([s, count, done = std::move(done)](Result<Bytes> r) mutable {
    if (!r.ok()) return;  // the sender sees the reset and reports it
    if (!r->empty()) {
      *count += r->size();
      serve_bench(s, count, std::move(done));
      return;
    }
    Bytes reply(8);
    for (int i = 0; i < 8; ++i) reply[i] = uint8_t(*count >> (56 - 8 * i));
    s->write(std::move(reply), [done, n = *count](Status) {
      if (done) done(n);
    });
    s->close_write();
  });
}

struct Sender {
  std::shared_ptr<p2p::HostStream> stream;
  uint64_t total = 0;
  uint64_t queued = 0;
  Bytes ack;
  std::promise<Result<uint64_t>> done;
  bool finished = false;

  void finish(Result<uint64_t> r) {
    if (finished) return;
    finished = true;
    done.set_value(std::move(r));
  }
  // Keeps one chunk queued behind the stream's own send buffer: write's callback is the
  // backpressure signal.
  void send_next(std::shared_ptr<Sender> self) {
    if (queued == total) {
      stream->close_write();
      read_ack(self);
      return;
    }
    size_t n = size_t(std::min<uint64_t>(kChunk, total - queued));
    queued += n;
    stream->write(Bytes(n, 0x5a), [self](Status st) {
      if (!st.ok()) return self->finish(st);
      self->send_next(self);
    });
  }
  void read_ack(std::shared_ptr<Sender> self) {
    stream->read_some([self](Result<Bytes> r) {
      if (!r.ok()) return self->finish(r.status());
      if (r->empty() || self->ack.size() + r->size() >= 8) {
        self->ack.insert(self->ack.end(), r->begin(), r->end());
        if (self->ack.size() != 8) {
          return self->finish(Status(StatusCode::kProtocolError, "bench ack is not 8 bytes"));
        }
        uint64_t v = 0;
        for (uint8_t b : self->ack) v = v << 8 | b;
        return self->finish(v);
      }
      self->ack.insert(self->ack.end(), r->begin(), r->end());
      self->read_ack(self);
    });
  }
};

}  // namespace

Result<uint64_t> transfer_over_host(uint64_t bytes, bool pnet) {
  p2p::HostOptions options;
  if (pnet) {
    NOLOCO_ASSIGN_OR_RETURN(options.psk, p2p::generate_psk());
  }
  asio::io_context io_a;
  asio::io_context io_b;
  NOLOCO_ASSIGN_OR_RETURN(auto id_a, p2p::Identity::generate());
  NOLOCO_ASSIGN_OR_RETURN(auto id_b, p2p::Identity::generate());
  NOLOCO_ASSIGN_OR_RETURN(auto host_a, p2p::Host::create(io_a, std::move(id_a), options));
  NOLOCO_ASSIGN_OR_RETURN(auto host_b, p2p::Host::create(io_b, std::move(id_b), options));
  // Set up before either network thread runs; from then on each host is touched only on its own.
  host_b->set_handler(kBenchProtocol, [](std::shared_ptr<p2p::HostStream> s) {
    serve_bench(std::move(s), std::make_shared<uint64_t>(0));
  });
  NOLOCO_ASSIGN_OR_RETURN(auto any, p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
  NOLOCO_ASSIGN_OR_RETURN(auto addr_b, host_b->listen(any));

  auto guard_a = asio::make_work_guard(io_a);
  auto guard_b = asio::make_work_guard(io_b);
  std::thread thread_a([&] { io_a.run(); });
  std::thread thread_b([&] { io_b.run(); });

  auto sender = std::make_shared<Sender>();
  sender->total = bytes;
  auto result = sender->done.get_future();
  asio::post(io_a, [&, sender] {
    host_a->new_stream(addr_b, {kBenchProtocol}, [sender](Result<std::shared_ptr<p2p::HostStream>> s) {
      if (!s.ok()) return sender->finish(s.status());
      sender->stream = *s;
      sender->send_next(sender);
    });
  });
  Result<uint64_t> moved = Status(StatusCode::kTimeout, "bench transfer did not finish in 10 minutes");
  if (result.wait_for(std::chrono::minutes(10)) == std::future_status::ready) moved = result.get();

  asio::post(io_a, [&] { host_a->close(); guard_a.reset(); });
  asio::post(io_b, [&] { host_b->close(); guard_b.reset(); });
  thread_a.join();
  thread_b.join();
  return moved;
}

Result<uint64_t> send_to_sink(const std::string& addr, uint64_t bytes, const std::string& dial_from) {
  NOLOCO_ASSIGN_OR_RETURN(auto target, p2p::Multiaddr::parse(addr));
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(auto id, p2p::Identity::generate());
  p2p::HostOptions options;
  options.dial_from = dial_from;
  NOLOCO_ASSIGN_OR_RETURN(auto host, p2p::Host::create(io, std::move(id), options));
  auto guard = asio::make_work_guard(io);
  std::thread thread([&] { io.run(); });
  auto sender = std::make_shared<Sender>();
  sender->total = bytes;
  auto result = sender->done.get_future();
  asio::post(io, [&, sender] {
    host->new_stream(target, {kBenchProtocol}, [sender](Result<std::shared_ptr<p2p::HostStream>> s) {
      if (!s.ok()) return sender->finish(s.status());
      sender->stream = *s;
      sender->send_next(sender);
    });
  });
  Result<uint64_t> moved = Status(StatusCode::kTimeout, "bench transfer did not finish in 10 minutes");
  if (result.wait_for(std::chrono::minutes(10)) == std::future_status::ready) moved = result.get();
  asio::post(io, [&] { host->close(); guard.reset(); });
  thread.join();
  return moved;
}

Result<uint64_t> serve_one_transfer(const std::function<void(const std::string&)>& on_listening,
                                    const std::string& listen) {
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(auto id, p2p::Identity::generate());
  NOLOCO_ASSIGN_OR_RETURN(auto host, p2p::Host::create(io, std::move(id), p2p::HostOptions{}));
  auto received = std::make_shared<std::promise<uint64_t>>();
  auto answered = std::make_shared<bool>(false);
  host->set_handler(kBenchProtocol, [received, answered](std::shared_ptr<p2p::HostStream> s) {
    serve_bench(std::move(s), std::make_shared<uint64_t>(0), [received, answered](uint64_t n) {
      if (std::exchange(*answered, true)) return;
      received->set_value(n);
    });
  });
  NOLOCO_ASSIGN_OR_RETURN(auto where, p2p::Multiaddr::parse(listen));
  NOLOCO_ASSIGN_OR_RETURN(auto addr, host->listen(where));
  on_listening(addr.to_string());
  auto guard = asio::make_work_guard(io);
  std::thread thread([&] { io.run(); });
  auto result = received->get_future();
  Result<uint64_t> moved = Status(StatusCode::kTimeout, "no bench transfer finished in 10 minutes");
  if (result.wait_for(std::chrono::minutes(10)) == std::future_status::ready) moved = result.get();
  // Let the 8-byte answer reach the sender before closing.
  asio::post(io, [&] { host->close(); guard.reset(); });
  thread.join();
  return moved;
}

}  // namespace noloco::bench
