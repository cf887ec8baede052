// State sync of a real model size, cut by killing the serving process (tools/bench/state_resume.sh
// drives it): a server publishes its state blob and waits to be killed; the client downloads from
// a first server, reports when half has arrived (the script kills that server then), and resumes
// from a second server serving the same snapshot.
//
//   state_resume_bench serve PRESET PORT          prints "ADDR <multiaddr>" and "SHA <hex>", then waits
//   state_resume_bench fetch ADDR1 ADDR2 BYTES    prints "HALF" at half, then the resumed figures
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "common/hash.h"
#include "p2p/identity.h"
#include "trainer/core/replica.h"
#include "trainer/node/node_network.h"
#include "trainer/node/node_payload.h"

using namespace noloco;
using namespace noloco::node;
using Clk = std::chrono::steady_clock;

namespace {

std::string hex(ByteView b) {
  std::string s;
  char buf[3];
  for (uint8_t c : b) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    s += buf;
  }
  return s;
}

std::unique_ptr<NodeNetwork> start_net(int port) {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(port));
  o.run_id = "state-bench";
  auto net = NodeNetwork::start(std::move(o));
  if (!net.ok()) {
    std::cerr << net.status().to_string() << "\n";
    std::exit(1);
  }
  return std::move(*net);
}

int serve(const std::string& preset, int port) {
  torch::set_num_threads(1);
  Bytes corpus(1 << 20, 'a');
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset(preset);
  rc.batch = 1;
  rc.seed = 7;  // both servers: the same weights, so the same snapshot
  auto r = trainer::Replica::create(rc, &corpus, 0, 1);
  if (!r.ok()) return 1;
  auto blob = build_state_blob(**r);
  if (!blob.ok()) return 1;
  auto net = start_net(port);
  auto snap = std::make_shared<StateSnapshot>();
  const auto d = sha256(*blob);
  snap->sha256.assign(d.begin(), d.end());
  snap->blob = std::move(*blob);
  std::cout << "SHA " << hex(snap->sha256) << " bytes " << snap->blob.size() << std::endl;
  net->publish_state(std::move(snap));
  std::cout << "ADDR " << net->listen_addr().to_string() << std::endl;
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

p2p::PeerRecord record_of(const std::string& addr) {
  p2p::PeerRecord rec;
  const auto at = addr.find("/p2p/");
  rec.peer = *p2p::PeerId::parse(addr.substr(at + 5));
  rec.addrs = {addr.substr(0, at)};
  return rec;
}

int fetch(const std::string& first, const std::string& second, uint64_t total) {
  auto net = start_net(0);
  std::atomic<bool> stop{false};
  std::thread watch([&] {
    while (!stop && net->traffic().state_in < total / 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!stop) std::cout << "HALF" << std::endl;
  });
  auto t0 = Clk::now();
  auto a = net->fetch_state(record_of(first), total + 4096, std::chrono::seconds(300));
  const double s1 = std::chrono::duration<double>(Clk::now() - t0).count();
  std::cout << "first server: " << (a.ok() ? "completed" : a.status().to_string()) << " after " << s1
            << " s; held " << net->partial_state_bytes() << " of " << total << " bytes" << std::endl;
  t0 = Clk::now();
  auto b = a.ok() ? std::move(a) : net->fetch_state(record_of(second), total + 4096, std::chrono::seconds(300));
  const double s2 = std::chrono::duration<double>(Clk::now() - t0).count();
  stop = true;
  watch.join();
  if (!b.ok()) {
    std::cout << "second server: " << b.status().to_string() << std::endl;
    return 1;
  }
  const auto d = sha256(b->blob);
  std::cout << "second server: resumed from " << b->resumed_from << ", fetched " << b->chunk_bytes << " bytes in "
            << s2 << " s; blob " << b->blob.size() << " bytes SHA " << hex(Bytes(d.begin(), d.end()))
            << "; state bytes in, both calls: " << net->traffic().state_in << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 4) return serve(argv[2], std::stoi(argv[3]));
  if (mode == "fetch" && argc == 5) return fetch(argv[2], argv[3], std::stoull(argv[4]));
  std::cerr << "usage: state_resume_bench serve PRESET PORT | fetch ADDR1 ADDR2 BYTES\n";
  return 2;
}
