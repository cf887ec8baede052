// The network half of `noloco doctor` (docs/doctor.md), for the command line (which may not
// include Asio): listen where the node listens (or on a temporary port when that one is taken),
// dial each peer from that port, and ask each one for a ping, identify's observed address, a
// clock sample (/noloco/time/1.0.0) and an AutoNAT dial-back of our listen port. Facts only:
// cli/doctor_checks.h judges them. Owns its io_context and runs it on the calling thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "p2p/autonat_wire.h"
#include "p2p/host_options.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"
#include "p2p/time_wire.h"

namespace noloco::p2p {

struct ProbeToolOptions {
  HostOptions host;      // PSK and timeouts; the tool turns hole_punch on (dials from the listen port)
  Multiaddr listen;      // the node's listen address
  std::vector<Multiaddr> peers;
  Duration budget = std::chrono::seconds(60);  // the whole probe; unfinished steps say "timed out"
};

struct ProbedPeer {
  Multiaddr addr;
  std::string error;              // the dial failed: nothing below is set
  bool from_listen_port = false;  // the connection left from our listen port (else an ephemeral one)
  double rtt_ms = 0;
  std::string ping_error;
  std::string agent;
  std::optional<Multiaddr> observed;  // identify: how the peer sees this machine
  bool identified = false;
  bool offers_autonat = false, offers_time = false;  // listed in its identify protocols
  std::optional<autonat::DialResponse> dialback;
  std::string dialback_error;  // the AutoNAT exchange failed (not a refusal or a failed dial back)
  std::optional<timeproto::ClockSample> clock;
  std::string clock_error;
};

struct ProbeReport {
  Multiaddr listened;          // what we bound (without /p2p/)
  bool temporary_port = false; // the node's port was taken (the node runs?): we listened on another
  std::vector<ProbedPeer> peers;
};

// kIoError when we cannot listen at all; every per-peer failure is inside the report.
Result<ProbeReport> run_probe_tool(const Identity& identity, const ProbeToolOptions& options);

}  // namespace noloco::p2p
