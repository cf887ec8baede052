// The live status of a running node (cli/status_model.h, status_text.h, status_address.h): events
// and progress samples in, snapshot out, and its text form; all sans-IO.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli/status_address.h"
#include "cli/status_model.h"
#include "cli/status_text.h"
#include "trainer/node/node_run.h"

using namespace noloco;
using namespace noloco::cli;
using json = nlohmann::json;

namespace {

const std::string kA = "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAaaaaaa";
const std::string kB = "12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBbbbbbb";

std::string outer(int64_t step, const std::vector<std::string>& group, int failures = 0) {
  return json{{"event", "outer"},     {"method", "noloco"},  {"outer_step", step},    {"inner_step", step * 5},
              {"loss", 2.5},          {"tokens_per_s", 900}, {"partner", group.empty() ? "" : group[0]},
              {"group", group},       {"staleness", std::vector<int>(group.size(), 0)},
              {"exchange_s", 0.25},   {"failures", failures}, {"bytes_out", 10}, {"bytes_in", 10},
              {"payload_bytes", 100}, {"raw_bytes", 400},    {"live_peers", 2},       {"lr", 0.003}}
      .dump();
}

json snap(const NodeStatusModel& m, int64_t now) { return json::parse(m.to_json(now)); }

}  // namespace

TEST_CASE("status model: before any event the node is starting and nothing is invented", "[status_model]") {
  NodeStatusModel m;
  const json j = snap(m, 1000);
  CHECK(j["state"] == "starting");
  CHECK(j["now_unix_ms"] == 1000);
  CHECK(j["last_exchange"].is_null());
  CHECK(j["last_checkpoint"].is_null());
  CHECK(j["last_failure"].is_null());
  CHECK(j["val_loss"].is_null());
  CHECK(j["recent_partners"].empty());
  CHECK(live_status_text(j).ok());
}

TEST_CASE("status model: start, progress, outer and checkpoint events make the snapshot", "[status_model]") {
  NodeStatusModel m;
  m.on_event(json{{"event", "start"}, {"peer", kA}, {"addr", "/ip4/127.0.0.1/tcp/1/p2p/" + kA}, {"run_id", "r1"},
                  {"bound", "x"}, {"resumed", true}, {"inner_step", 50}, {"outer_step", 10}, {"val_loss", 4.0},
                  {"params", 123}}
                 .dump(),
             1000);
  node::NodeProgress p;
  p.phase = "call";
  p.inner_step = 55;
  p.outer_step = 10;
  p.loss = 3.0;
  p.live_peers = 3;
  p.connections = 4;
  m.on_progress(p, 2000);
  m.on_event(outer(11, {kB}), 3000);
  m.on_event(json{{"event", "checkpoint"}, {"id", 7}, {"outer_step", 11}, {"inner_step", 55}}.dump(), 3500);
  const json j = snap(m, 5000);
  CHECK(j["state"] == "running");
  CHECK(j["peer"] == kA);
  CHECK(j["run_id"] == "r1");
  CHECK(j["resumed"] == true);
  CHECK(j["phase"] == "call");
  CHECK(j["outer_step"] == 11);
  CHECK(j["inner_step"] == 55);
  CHECK(j["peers"]["live"] == 2);  // the outer event's view is newer than the progress sample's
  CHECK(j["peers"]["connections"] == 4);
  CHECK(j["val_loss"] == 4.0);
  CHECK(j["last_exchange"]["outcome"] == "mixed");
  CHECK(j["last_exchange"]["partner"] == kB);
  CHECK(j["last_exchange"]["unix_ms"] == 3000);
  CHECK(j["recent_partners"].size() == 1);
  CHECK(j["last_checkpoint"]["id"] == 7);
  CHECK(j["last_checkpoint"]["unix_ms"] == 3500);
  CHECK(j["counts"]["mixed"] == 1);
  CHECK(j["last_failure"].is_null());

  auto text = live_status_text(j);
  REQUIRE(text.ok());
  CHECK(text->find("phase        call") != std::string::npos);
  CHECK(text->find("outer 11, inner 55") != std::string::npos);
  CHECK(text->find("2 live, 4 connections") != std::string::npos);
  CHECK(text->find("mixed with …bbbbbb") != std::string::npos);
  CHECK(text->find("#7 at outer 11, 1 s ago") != std::string::npos);
  CHECK(text->find("last failure none") != std::string::npos);
}

TEST_CASE("status model: the last failure says why, whichever kind came last", "[status_model]") {
  NodeStatusModel m;
  m.on_event(outer(1, {}, 3), 100);
  json j = snap(m, 200);
  CHECK(j["last_failure"]["kind"] == "exchange");
  CHECK(j["last_failure"]["why"].get<std::string>().find("3 partner tries failed") != std::string::npos);
  CHECK(j["counts"]["solo"] == 1);
  CHECK(j["counts"]["partner_failures"] == 3);

  m.on_event(json{{"event", "refused"}, {"peer", kB}, {"why", "Corrupt: bad checksum"}}.dump(), 300);
  j = snap(m, 400);
  CHECK(j["last_failure"]["kind"] == "refused");
  CHECK(j["last_failure"]["peer"] == kB);
  CHECK(j["last_failure"]["why"] == "refused its payload: Corrupt: bad checksum");

  m.on_event(json{{"event", "checkpoint_failed"}, {"outer_step", 4}, {"inner_step", 20},
                  {"why", "IoError: No space left on device"}}
                 .dump(),
             500);
  j = snap(m, 600);
  CHECK(j["last_failure"]["kind"] == "checkpoint");
  CHECK(j["last_failure"]["why"] == "checkpoint of outer step 4 failed: IoError: No space left on device");
  CHECK(j["counts"]["checkpoint_failures"] == 1);

  m.on_event(json{{"event", "state_sync_failed"}, {"peer", kA}, {"why", "IoError: reset"}}.dump(), 700);
  CHECK(snap(m, 800)["last_failure"]["kind"] == "state_sync");
  // A solo step with no partner tried (nobody live) is not a failure.
  m.on_event(outer(2, {}, 0), 900);
  CHECK(snap(m, 1000)["last_failure"]["kind"] == "state_sync");
  auto text = live_status_text(snap(m, 1000));
  REQUIRE(text.ok());
  CHECK(text->find("last failure state_sync …aaaaaa, just now: state sync failed: IoError: reset") != std::string::npos);
}

TEST_CASE("status model: a state sync moves the steps and the validation loss", "[status_model]") {
  NodeStatusModel m;
  m.on_event(outer(5, {kB}), 10);
  m.on_event(json{{"event", "state_sync"}, {"peer", kB}, {"outer_step", 14}, {"inner_step", 70}, {"bytes", 1000},
                  {"seconds", 0.1}, {"val_loss_before", 4.0}, {"val_loss_after", 3.0}}
                 .dump(),
             20);
  const json j = snap(m, 30);
  CHECK(j["outer_step"] == 14);
  CHECK(j["inner_step"] == 70);
  CHECK(j["val_loss"] == 3.0);
  CHECK(j["counts"]["state_syncs"] == 1);
  CHECK(j["last_exchange"]["outer_step"] == 5);  // the last exchange stays the one that happened
}

TEST_CASE("status model: recent partners keep the newest few, oldest first", "[status_model]") {
  NodeStatusModel m;
  for (int i = 1; i <= 12; ++i) m.on_event(outer(i, {i % 2 ? kA : kB}), i);
  const json j = snap(m, 100);
  REQUIRE(j["recent_partners"].size() == NodeStatusModel::kRecentPartners);
  CHECK(j["recent_partners"][0]["outer_step"] == 12 - static_cast<int>(NodeStatusModel::kRecentPartners) + 1);
  CHECK(j["recent_partners"].back()["outer_step"] == 12);
  CHECK(j["counts"]["mixed"] == 12);
}

TEST_CASE("status model: malformed events change nothing and done ends the run", "[status_model]") {
  NodeStatusModel m;
  m.on_event(outer(3, {kA}), 10);
  const std::string before = m.to_json(20);
  for (const std::string bad : {"not json", "[1,2]", "{\"event\":\"outer\",\"outer_step\":\"x\",\"group\":[]}",
                                "{\"event\":\"outer\",\"outer_step\":4,\"group\":[1]}",
                                "{\"event\":\"outer\",\"outer_step\":4,\"group\":[],\"loss\":\"high\"}"}) {
    INFO(bad);
    m.on_event(bad, 15);
    CHECK(m.to_json(20) == before);
  }
  m.on_event(json{{"event", "done"}, {"interrupted", true}}.dump(), 30);
  node::NodeProgress p;
  p.phase = "train";
  m.on_progress(p, 40);  // a late sample does not bring the phase back
  const json j = snap(m, 50);
  CHECK(j["state"] == "stopped");
  CHECK(j["phase"] == "finish");
}

TEST_CASE("status model: reachability, relay reservation and peer paths come from progress", "[status_model]") {
  NodeStatusModel m;
  json j = snap(m, 10);
  CHECK(j["nat"]["reachability"] == "unknown");
  CHECK(j["nat"]["relay_reservations"].empty());
  CHECK(j["nat"]["paths"]["relayed"] == 0);

  node::NodeProgress p;
  p.phase = "train";
  p.nat.reachability = "private";
  p.nat.basis = "dialback";
  p.nat.why = "dial-back: 1 peer could not reach our listen address (AutoNAT)";
  const std::string circuit = "/ip4/198.51.100.10/tcp/4001/p2p/" + kA + "/p2p-circuit";
  p.nat.reservations = {circuit};
  p.nat.direct = 1;
  p.nat.relayed = 2;
  p.nat.hole_punched = 3;
  p.nat.punch_attempts = 5;
  p.nat.punch_succeeded = 3;
  p.nat.punch_failed = 2;
  m.on_progress(p, 20);
  j = snap(m, 30);
  const json& n = j["nat"];
  CHECK(n["reachability"] == "private");
  CHECK(n["basis"] == "dialback");
  CHECK(n["why"] == p.nat.why);
  CHECK(n["relay_reservations"] == json::array({circuit}));
  CHECK(n["paths"] == json({{"direct", 1}, {"relayed", 2}, {"hole_punched", 3}}));
  CHECK(n["hole_punches"] == json({{"attempts", 5}, {"succeeded", 3}, {"failed", 2}}));

  auto text = live_status_text(j);
  REQUIRE(text.ok());
  CHECK(text->find("reachability private (dial-back: 1 peer could not reach our listen address (AutoNAT))\n") !=
        std::string::npos);
  CHECK(text->find("relay        reserved: " + circuit + "\n") != std::string::npos);
  CHECK(text->find("paths        1 direct, 2 relayed, 3 hole-punched; hole punches 3 succeeded, 2 failed of 5 tried\n") !=
        std::string::npos);

  // The node became public: its reservations are gone, the text says so.
  p.nat.reservations.clear();
  m.on_progress(p, 40);
  text = live_status_text(snap(m, 50));
  REQUIRE(text.ok());
  CHECK(text->find("relay        no reservation\n") != std::string::npos);
  // A snapshot from a node without the nat object (an older binary) still reads.
  json old = snap(m, 60);
  old.erase("nat");
  text = live_status_text(old);
  REQUIRE(text.ok());
  CHECK(text->find("reachability") == std::string::npos);
}

TEST_CASE("status text: a snapshot missing a field is refused, ages read in units", "[status_model]") {
  CHECK(live_status_text(json{{"state", "running"}}).status().code() == StatusCode::kCorrupt);
  CHECK(age_text(999) == "just now");
  CHECK(age_text(5000) == "5 s ago");
  CHECK(age_text(600000) == "10 min ago");
  CHECK(age_text(3 * 3600 * 1000) == "3 h ago");
}

TEST_CASE("status address file: round trip and refusals", "[status_model]") {
  const StatusAddress a{"127.0.0.1:9464", 42, kA};
  auto back = status_address_from_json(status_address_to_json(a));
  REQUIRE(back.ok());
  CHECK(back->http == "127.0.0.1:9464");
  CHECK(back->pid == 42);
  CHECK(back->peer == kA);
  CHECK(status_address_from_json("nope").status().code() == StatusCode::kCorrupt);
  CHECK(status_address_from_json("{\"pid\":1}").status().code() == StatusCode::kCorrupt);
  CHECK(status_address_from_json("{\"http\":\"no-port\"}").status().code() == StatusCode::kCorrupt);
  CHECK(read_status_address("/nonexistent-dir-for-test").status().code() == StatusCode::kNotFound);
}
