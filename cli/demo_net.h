// `noloco demo --net PROFILE`: every node of the demo behind tools/linkemu, the user-space link
// emulator (docs/linkemu.md), so a user sees the swarm train over wide-area links on one machine.
// Node i really listens on 127.0.1.(i+1):PORT, dials from 127.0.1.(i+1) and is dialed through the
// proxy at 127.0.2.(i+1):PORT; the profiles are linkemu's (tools/linkemu/make_topology.py).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cli/demo_swarm.h"
#include "common/status.h"

namespace noloco::cli {

struct DemoNet {
  std::string profile;              // uniform | hetero | lan
  std::string linkemu;              // the linkemu binary
  uint16_t port = 0;                // every node's (and proxy's) port, free on 127.0.1.1
  std::filesystem::path topology;   // the file linkemu reads
};

// Checks the profile, finds linkemu (`linkemu_path`, else next to this build's noloco), picks a
// free port and writes the topology for `peers` nodes into `dir`.
Result<DemoNet> plan_demo_net(const std::string& profile, int peers, const std::filesystem::path& dir,
                              const std::string& noloco_exe, const std::string& linkemu_path);

// The linkemu process (its log in dir/linkemu.log); its first stdout line means it listens.
NodeLaunch linkemu_launch(const DemoNet& net, const std::filesystem::path& dir);

// Puts node i behind the emulator: --listen, --dial-from and --announce.
void put_behind_linkemu(NodeLaunch& node, const DemoNet& net, int i);

// One line for the demo's header: what each link looks like.
std::string describe_demo_net(const DemoNet& net);

}  // namespace noloco::cli
