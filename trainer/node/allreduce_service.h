// The Asio adapter of the ring all-reduce: runs /noloco/allreduce/1.0.0 on an existing p2p Host
// (docs/protocols/allreduce.md). The ring arithmetic and message checks are in the sans-IO core
// (allreduce_ring.h); this file gathers the members that reached the same outer step (READY),
// wires the ring over yamux streams, redoes it among survivors when a member fails, and keeps
// everything within the caller's budget.
//
// Threading: create() on the network thread or before it runs; allreduce() from any other
// thread (it posts to the network thread and waits with a bounded deadline); close() anywhere.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"
#include "trainer/core/codec.h"

namespace asio {
class io_context;  // kept out of this header: Asio stays in .cc files outside p2p/
}
namespace noloco::p2p {
class Host;
}

namespace noloco::node {

struct AllReduceMember {
  p2p::PeerId peer;
  p2p::Multiaddr addr;  // where to dial it (with or without /p2p/)
};

struct AllReduceOptions {
  std::string run_id;                  // messages of other runs are refused
  uint32_t chunk_elems = 32768;        // floats per message (128 KiB); must be equal on all members
  codec::Mode encoding = codec::Mode::kFp32;  // values on the wire; must be equal on all members
  size_t writes_in_flight = 4;         // messages handed to the stream and not yet accepted by it
  Duration gather_timeout = std::chrono::seconds(5);  // waiting for READY of every expected member
  Duration stall_timeout = std::chrono::seconds(10);  // ring attempt with no byte received
  // Network thread: called after every received chunk with the attempt's bytes received so far.
  std::function<void(uint64_t)> on_progress;
};

struct AllReduceOutcome {
  std::vector<p2p::PeerId> members;   // ring order; the mean is over these members' vectors
  uint32_t attempts = 0;              // rings tried (1: the first one worked)
  uint64_t bytes_sent = 0, bytes_received = 0;  // ring messages, all attempts (above Noise/yamux)
  uint64_t fp32_bytes_sent = 0;       // what bytes_sent would have been with fp32 values
  double seconds = 0;                 // the caller's time blocked
  double gather_seconds = 0;          // of which waiting for READY (all attempts)
  std::vector<std::string> failures;  // why each aborted attempt ended
};

class AllReduceServiceImpl;

class AllReduceService {
 public:
  // Serves the protocol on `host` (its io_context is `io`).
  static Result<std::shared_ptr<AllReduceService>> create(asio::io_context& io, std::shared_ptr<p2p::Host> host,
                                                          AllReduceOptions options);
  ~AllReduceService();

  // Blocking: replaces `data` by the mean over the members of `members` (ourselves included or
  // not) that reached `outer_step` and stayed alive, ring-ordered by peer id. On error (budget
  // spent, closed, bad input) `data` is unchanged, except when the network thread never
  // answers at all (stopped): then it is left empty. One call at a time.
  Result<AllReduceOutcome> allreduce(std::vector<float>& data, uint64_t outer_step,
                                     std::vector<AllReduceMember> members, Duration budget);
  // Stops serving and fails a running call. Idempotent.
  void close();

 private:
  explicit AllReduceService(std::shared_ptr<AllReduceServiceImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<AllReduceServiceImpl> impl_;
};

}  // namespace noloco::node
