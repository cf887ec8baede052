// The demo's closing table, summary.json and chart, from hand-made node states.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cli/demo_summary.h"
#include "demo_test_util.h"

using namespace noloco::cli;
using noloco::test::CapturedOutput;
using noloco::test::DemoTempDir;
using noloco::test::read_text;

namespace {

const std::string kPeerA = "12D3KooWAAAAAAAAAAAAAAaaaaaa";
const std::string kPeerB = "12D3KooWBBBBBBBBBBBBBBbbbbbb";

// Two nodes that met through Progress, so partners are shown by node name.
struct TwoNodes {
  CapturedOutput progress_out;
  Progress progress{10, progress_out.f};
  std::vector<NodeState> nodes{2};
  TwoNodes() {
    nodes[0].name = "node0";
    nodes[1].name = "node1";
    progress.on_line(nodes[0], R"({"event":"start","peer":")" + kPeerA + R"(","val_loss":5.0})");
    progress.on_line(nodes[1], R"({"event":"start","peer":")" + kPeerB + R"(","val_loss":5.0})");
    nodes[0].last_val = 3.0;
    nodes[1].last_val = 3.5;
    nodes[0].exchanges = 9;
    nodes[0].solo = 1;
    nodes[0].partners = {{kPeerB, 9}};
    nodes[0].bytes_out = 2'000'000;
    nodes[0].raw_out = 5'000'000;
    nodes[1].bytes_out = 1'000'000;
    nodes[1].raw_out = 1'000'000;
    nodes[0].tokens_per_s = {1, 2, 6};
    nodes[0].exchange_s = {3, 1, 2};
    nodes[0].curve = {{0, 5.0}, {10, 4.0}, {20, 3.0}};
    nodes[1].curve = {{0, 5.0}, {20, 3.5}};
  }
};

}  // namespace

TEST_CASE("demo summary prints a row per node and the wire totals") {
  DemoTempDir t;
  TwoNodes two;
  CapturedOutput out;
  CHECK(finish_demo_summary(two.nodes, two.progress, {"RUN", t.path, 2, 3.25}, out.f));
  const std::string text = out.text();
  CHECK(text.find("\nnode   val loss before -> after exchanges  solo  partners (times mixed)") != std::string::npos);
  CHECK(text.find("node0  5.0000 -> 3.0000               9     1  node1 x9 ") != std::string::npos);
  CHECK(text.find("2.00 MB / 5.00 MB\n") != std::string::npos);
  CHECK(text.find("wire total: 3.00 MB sent, 6.00 MB as raw fp32 (2.0x smaller)\n") != std::string::npos);
  CHECK(text.find("unigram entropy of the corpus: 3.2500 nats") != std::string::npos);
  CHECK(text.find("loss curves: " + (t.path / "loss_curves.png").string() + "\n") != std::string::npos);
}

TEST_CASE("demo summary writes summary.json and the loss-curve PNG") {
  DemoTempDir t;
  TwoNodes two;
  CapturedOutput out;
  (void)finish_demo_summary(two.nodes, two.progress, {"RUN", t.path, 2, 3.25}, out.f);
  const auto j = nlohmann::json::parse(read_text(t.path / "summary.json"));
  CHECK(j["run_id"] == "RUN");
  CHECK(j["unigram_entropy_nats"] == 3.25);
  REQUIRE(j["nodes"].size() == 2);
  const auto& n0 = j["nodes"][0];
  CHECK(n0["name"] == "node0");
  CHECK(n0["peer"] == kPeerA);
  CHECK(n0["partners"] == nlohmann::json{{"node1", 9}});
  CHECK(n0["tokens_per_s_mean"] == 3.0);
  CHECK(n0["exchange_s_median"] == 2.0);
  CHECK(n0["raw_fp32_bytes"] == 5'000'000);
  CHECK(n0["curve"].size() == 3);
  const std::string png = read_text(t.path / "loss_curves.png");
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_CASE("demo summary says whether every node's validation loss fell") {
  DemoTempDir t;
  TwoNodes two;
  CapturedOutput out;
  two.nodes[1].last_val = 5.0;  // no better than at the start
  CHECK_FALSE(finish_demo_summary(two.nodes, two.progress, {"RUN", t.path, 2, 3.25}, out.f));
}

TEST_CASE("demo summary reports a chart it cannot write and still writes summary.json") {
  DemoTempDir t;
  TwoNodes two;
  CapturedOutput out;
  for (auto& n : two.nodes) n.curve.clear();  // nothing to draw
  (void)finish_demo_summary(two.nodes, two.progress, {"RUN", t.path, 2, 3.25}, out.f);
  CHECK(out.text().find("could not write the chart: ") != std::string::npos);
  CHECK(std::filesystem::exists(t.path / "summary.json"));
  CHECK_FALSE(std::filesystem::exists(t.path / "loss_curves.png"));
}

TEST_CASE("demo summary names the run's method in the table and summary.json") {
  DemoTempDir t;
  TwoNodes two;
  CapturedOutput out;
  (void)finish_demo_summary(two.nodes, two.progress, {"RUN", t.path, 2, 3.25, "diloco"}, out.f);
  CHECK(out.text().find("\nmethod: DiLoCo\n") != std::string::npos);
  CHECK(nlohmann::json::parse(read_text(t.path / "summary.json"))["method"] == "diloco");
  CapturedOutput plain;
  DemoTempDir t2;
  (void)finish_demo_summary(two.nodes, two.progress, {"RUN", t2.path, 2, 3.25}, plain.f);
  CHECK(plain.text().find("\nmethod: NoLoCo\n") != std::string::npos);
  CHECK(nlohmann::json::parse(read_text(t2.path / "summary.json"))["method"] == "noloco");
}
