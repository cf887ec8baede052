// The demo's event parser: per-node totals from the nodes' `--json` lines (docs/node.md) and the
// progress lines it prints.
#include <catch2/catch.hpp>

#include <string>

#include "cli/demo_progress.h"
#include "demo_test_util.h"

using namespace noloco::cli;
using noloco::test::CapturedOutput;

namespace {

const std::string kPeerA = "12D3KooWAAAAAAAAAAAAAAaaaaaa";
const std::string kPeerB = "12D3KooWBBBBBBBBBBBBBBbbbbbb";

std::string start_event(const std::string& peer, double val) {
  return R"({"event":"start","peer":")" + peer + R"(","inner_step":0,"val_loss":)" + std::to_string(val) + "}";
}

}  // namespace

TEST_CASE("demo progress takes the first non-JSON line as the node's address") {
  CapturedOutput out;
  Progress p(30, out.f);
  NodeState n;
  n.name = "node0";
  p.on_line(n, "/ip4/127.0.0.1/tcp/4001/p2p/" + kPeerA);
  p.on_line(n, "not json either");
  CHECK(n.addr == "/ip4/127.0.0.1/tcp/4001/p2p/" + kPeerA);
  CHECK(out.text().empty());
}

TEST_CASE("demo progress counts exchanges, solo steps, partners and bytes from outer events") {
  CapturedOutput out;
  Progress p(30, out.f);  // a progress line every 3rd outer step
  NodeState a, b;
  a.name = "node0";
  b.name = "node1";
  p.on_line(a, start_event(kPeerA, 5.5));
  p.on_line(b, start_event(kPeerB, 5.5));
  // Mixed with node1: 300 bytes out are 3 payloads of 100 bytes, each 400 bytes as raw fp32.
  p.on_line(a, R"({"event":"outer","outer_step":1,"inner_step":10,"group":[")" + kPeerB +
                   R"("],"partner":")" + kPeerB +
                   R"(","bytes_out":300,"payload_bytes":100,"raw_bytes":400,"tokens_per_s":1000,"exchange_s":0.25,"val_loss":4.0})");
  p.on_line(a, R"({"event":"outer","outer_step":2,"inner_step":20,"group":[],"bytes_out":0,"tokens_per_s":2000})");
  p.on_line(a, R"({"event":"outer","outer_step":3,"inner_step":30,"group":[")" + kPeerB + R"("],"partner":")" + kPeerB +
                   R"(","bytes_out":100,"payload_bytes":100,"raw_bytes":400,"loss":3.5,"val_loss":3.25,"live_peers":1,"exchange_s":0.5})");
  p.on_line(a, R"({"event":"done","inner_step":30,"val_loss":3.0})");

  CHECK(a.peer == kPeerA);
  CHECK(a.have_first);
  CHECK(a.first_val == 5.5);
  CHECK(a.last_val == 3.0);
  CHECK(a.exchanges == 2);
  CHECK(a.solo == 1);
  CHECK(a.outer == 3);
  CHECK(a.inner == 30);
  CHECK(a.partners.size() == 1);
  CHECK(a.partners.at(kPeerB) == 2);
  CHECK(a.bytes_out == 400);
  CHECK(a.raw_out == 1200 + 400);
  CHECK(a.payload_bytes == 100);
  CHECK(a.raw_payload == 400);
  CHECK(a.group_sizes == std::vector<double>{2, 1, 2});
  CHECK(a.exchange_s == std::vector<double>{0.25, 0.5});  // only outer steps with a partner
  CHECK(a.curve == std::vector<std::pair<double, double>>{{0, 5.5}, {10, 4.0}, {30, 3.25}});

  const std::string text = out.text();
  CHECK(text.find("node0  started  peer ...aaaaaa  val loss 5.5000\n") != std::string::npos);
  CHECK(text.find("node1  started  peer ...bbbbbb  val loss 5.5000\n") != std::string::npos);
  CHECK(text.find("outer   1/30") == std::string::npos);  // not a multiple of 3
  CHECK(text.find("node0  outer   3/30  step   30  loss 3.500  val 3.250       0 tok/s  peers 1  "
                  "partner node1    500 ms  group 2\n") != std::string::npos);
  CHECK(text.find("node0  done at step 30\n") != std::string::npos);
}

TEST_CASE("demo progress prints state syncs and refusals with node names") {
  CapturedOutput out;
  Progress p(10, out.f);
  NodeState a, b;
  a.name = "node0";
  b.name = "node1";
  p.on_line(b, start_event(kPeerB, 5.0));
  p.on_line(a, R"({"event":"state_sync","peer":")" + kPeerB +
                   R"(","outer_step":7,"inner_step":70,"val_loss_before":4.5,"val_loss_after":3.5})");
  p.on_line(a, R"({"event":"refused","peer":"12D3KooWunknownpeerXYZ123","why":"stale"})");
  const std::string text = out.text();
  CHECK(text.find("node0  state sync from node1: outer step 7, val loss 4.5000 -> 3.5000\n") != std::string::npos);
  CHECK(text.find("node0  refused XYZ123: stale\n") != std::string::npos);
  CHECK(a.curve == std::vector<std::pair<double, double>>{{70, 3.5}});
  CHECK(p.label(kPeerB) == "node1");
  CHECK(p.label("abc") == "abc");
}

TEST_CASE("demo progress skips an event with wrongly typed fields and keeps counting") {
  CapturedOutput out;
  Progress p(10, out.f);
  NodeState a;
  a.name = "node0";
  p.on_line(a, R"({"event":"start","peer":"ab","val_loss":5.0})");  // a peer id shorter than 6
  p.on_line(a, R"({"event":"outer","outer_step":1,"inner_step":10,"group":[42]})");
  p.on_line(a, R"({"event":7})");
  p.on_line(a, R"({"event":"outer","outer_step":2,"inner_step":20,"group":["x"],"val_loss":"low"})");
  p.on_line(a, R"({"event":"outer","outer_step":3,"inner_step":30,"group":[]})");
  const std::string text = out.text();
  CHECK(text.find("node0  started  peer ...ab  val loss 5.0000\n") != std::string::npos);
  size_t skipped = 0;
  for (size_t pos = 0; (pos = text.find("node0  skipped an unreadable event: ", pos)) != std::string::npos; ++pos)
    ++skipped;
  CHECK(skipped == 3);
  CHECK(a.outer == 3);
  CHECK(a.solo == 1);
  CHECK(a.curve.size() == 1);  // the start only: "low" is no loss
}

TEST_CASE("demo progress counts a DiLoCo node's ring bytes as raw fp32 and its all-reduce members as the group") {
  CapturedOutput out;
  Progress p(30, out.f);
  NodeState a;
  a.name = "node0";
  p.on_line(a, start_event(kPeerA, 5.5));
  // A 3-member all-reduce: no payload, 800 ring bytes (fp32 on the wire), then a solo step.
  p.on_line(a, R"({"event":"outer","method":"diloco","outer_step":1,"inner_step":10,"group":[")" + kPeerB +
                   R"(","12D3KooWCCCC"],"partner":")" + kPeerB +
                   R"(","bytes_out":800,"payload_bytes":0,"raw_bytes":400,"members":3,"exchange_s":0.1})");
  p.on_line(a, R"({"event":"outer","method":"diloco","outer_step":2,"inner_step":20,"group":[],"bytes_out":0,"payload_bytes":0,"raw_bytes":400,"members":1})");
  CHECK(a.exchanges == 1);
  CHECK(a.solo == 1);
  CHECK(a.bytes_out == 800);
  CHECK(a.raw_out == 800);
  CHECK(a.group_sizes == std::vector<double>{3, 1});
}

TEST_CASE("demo progress takes an encoded DiLoCo ring's fp32 equivalent from raw_bytes_out") {
  CapturedOutput out;
  Progress p(30, out.f);
  NodeState a;
  a.name = "node0";
  p.on_line(a, start_event(kPeerA, 5.5));
  // int8 on the wire: 230 bytes sent where fp32 values would have taken 800.
  p.on_line(a, R"({"event":"outer","method":"diloco","outer_step":1,"inner_step":10,"group":[")" + kPeerB +
                   R"("],"bytes_out":230,"raw_bytes_out":800,"payload_bytes":0,"raw_bytes":400,"members":2})");
  CHECK(a.bytes_out == 230);
  CHECK(a.raw_out == 800);
}

TEST_CASE("demo progress keeps a timeline of evaluations with bytes so far, and every outer step's blocked time") {
  CapturedOutput out;
  Progress p(30, out.f);
  NodeState a;
  a.name = "node0";
  p.on_line(a, start_event(kPeerA, 5.5));
  p.on_line(a, R"({"event":"outer","outer_step":1,"inner_step":10,"group":[")" + kPeerB + R"("],"partner":")" +
                   kPeerB + R"(","bytes_out":300,"payload_bytes":100,"raw_bytes":400,"exchange_s":0.25,"val_loss":4.0})");
  p.on_line(a, R"({"event":"outer","outer_step":2,"inner_step":20,"group":[],"bytes_out":0,"exchange_s":0})");
  p.on_line(a, R"({"event":"outer","outer_step":3,"inner_step":30,"group":[")" + kPeerB +
                   R"("],"bytes_out":100,"payload_bytes":100,"raw_bytes":400,"exchange_s":0.5,"val_loss":3.25})");
  // One point per evaluation (start, outer steps 1 and 3): time, inner step, val loss, bytes so far.
  REQUIRE(a.timeline.size() == 3);
  CHECK(a.timeline[0] == std::vector<double>{a.timeline[0][0], 0, 5.5, 0});
  CHECK(a.timeline[1][1] == 10);
  CHECK(a.timeline[1][2] == 4.0);
  CHECK(a.timeline[1][3] == 300);
  CHECK(a.timeline[2][1] == 30);
  CHECK(a.timeline[2][3] == 400);
  CHECK(a.timeline[0][0] >= 0);
  CHECK(a.timeline[1][0] >= a.timeline[0][0]);
  CHECK(a.timeline[2][0] >= a.timeline[1][0]);
  // Blocked time of every outer step, a caller-paired or solo one (0 s) included.
  CHECK(a.blocked_s == std::vector<double>{0.25, 0.0, 0.5});
}
