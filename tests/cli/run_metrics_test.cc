// `noloco run --metrics`: which events and progress samples move which metrics (cli/run_metrics.h).
#include <catch2/catch.hpp>

#include "cli/run_metrics.h"
#include "trainer/node/node_run.h"

using namespace noloco;
using namespace noloco::cli;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("run metrics: outer, refused, stale and checkpoint events move their counters", "[run_metrics]") {
  auto m = RunMetrics::create();
  REQUIRE(m.ok());
  RunMetrics& r = **m;
  r.on_event(R"({"event":"start","peer":"12D3KooWx","run_id":"ab","params":100,"val_loss":5.5})");
  r.on_event(R"({"event":"outer","outer_step":1,"group":[],"failures":2,"exchange_s":1.5,"bytes_out":10,
                 "bytes_in":0,"payload_bytes":7,"tokens_per_s":300,"val_loss":5.25})");
  r.on_event(R"({"event":"outer","outer_step":2,"group":["a","b"],"failures":0,"exchange_s":0.25,"bytes_out":30,
                 "bytes_in":40,"payload_bytes":8,"tokens_per_s":310})");
  r.on_event(R"({"event":"refused","peer":"p","why":"Corrupt: bad checksum"})");
  r.on_event(R"({"event":"refused","peer":"p","why":"made-up reason"})");
  r.on_event(R"({"event":"stale","peer":"p","lag":6,"via":"partner"})");
  r.on_event(R"({"event":"checkpoint","id":3,"outer_step":2,"inner_step":10})");
  r.on_event(R"({"event":"checkpoint_failed","outer_step":4,"inner_step":20,"why":"IoError: full"})");
  r.on_event(R"({"event":"banned","peer":"p","why":"x"})");
  r.on_event("not json");
  r.on_event(R"({"event":"outer","group":"not an array"})");  // wrong types: left out, no crash
  const std::string text = r.render();
  INFO(text);
  CHECK(has_line(text, R"(noloco_node_info{peer="12D3KooWx",run_id="ab"} 1)"));
  CHECK(has_line(text, R"(noloco_exchanges_total{outcome="solo"} 1)"));
  CHECK(has_line(text, R"(noloco_exchanges_total{outcome="mixed"} 1)"));
  CHECK(has_line(text, "noloco_exchange_failures_total 2"));
  CHECK(has_line(text, "noloco_exchange_seconds_total 1.75"));
  CHECK(has_line(text, "noloco_exchange_last_seconds 0.25"));
  CHECK(has_line(text, "noloco_exchange_group_size 3"));
  CHECK(has_line(text, R"(noloco_exchange_bytes_total{direction="sent"} 40)"));
  CHECK(has_line(text, R"(noloco_exchange_bytes_total{direction="received"} 40)"));
  CHECK(has_line(text, "noloco_train_val_loss 5.25"));  // the second outer step had no evaluation
  CHECK(has_line(text, "noloco_train_tokens_per_second 310"));
  CHECK(has_line(text, R"(noloco_exchange_refused_total{reason="corrupt"} 1)"));
  CHECK(has_line(text, R"(noloco_exchange_refused_total{reason="other"} 1)"));
  CHECK(has_line(text, R"(noloco_exchange_stale_total{via="partner"} 1)"));
  CHECK(has_line(text, "noloco_store_checkpoints_written_total 1"));
  CHECK(has_line(text, "noloco_store_last_checkpoint_outer_step 2"));
  CHECK(has_line(text, "noloco_store_checkpoint_failures_total 1"));
  CHECK(has_line(text, "noloco_node_peers_banned_total 1"));
}

TEST_CASE("run metrics: progress samples set steps, loss, bytes and exactly one phase", "[run_metrics]") {
  auto m = RunMetrics::create();
  REQUIRE(m.ok());
  node::NodeProgress p;
  p.phase = "train";
  p.inner_step = 12;
  p.outer_step = 2;
  p.loss = 4.5;
  p.connections = 3;
  p.exchange_out = 1000;
  p.state_in = 77;
  (*m)->on_progress(p);
  p.phase = "call";
  (*m)->on_progress(p);
  const std::string text = (*m)->render();
  INFO(text);
  CHECK(has_line(text, "noloco_node_inner_step 12"));
  CHECK(has_line(text, "noloco_node_outer_step 2"));
  CHECK(has_line(text, "noloco_train_loss 4.5"));
  CHECK(has_line(text, "noloco_p2p_connections 3"));
  CHECK(has_line(text, R"(noloco_p2p_protocol_bytes_total{protocol="exchange",direction="sent"} 1000)"));
  CHECK(has_line(text, R"(noloco_p2p_protocol_bytes_total{protocol="state",direction="received"} 77)"));
  CHECK(has_line(text, R"(noloco_node_phase{phase="call"} 1)"));
  CHECK(has_line(text, R"(noloco_node_phase{phase="train"} 0)"));
}

TEST_CASE("run metrics: refusal reasons map to their Status code or other", "[run_metrics]") {
  CHECK(refusal_class("Corrupt: x") == "corrupt");
  CHECK(refusal_class("InvalidArgument: y") == "invalid_argument");
  CHECK(refusal_class("TooLarge: 5 > 4") == "too_large");
  CHECK(refusal_class("OK: odd") == "other");
  CHECK(refusal_class("") == "other");
  CHECK(refusal_class("anything") == "other");
}
