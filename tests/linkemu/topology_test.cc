// Topology file parsing: overrides, defaults and clear errors for bad input.
#include <catch2/catch.hpp>

#include <string>

#include "tools/linkemu/topology.h"

using namespace noloco;
using namespace noloco::linkemu;

namespace {

const char* kThreeNodes = R"({
  "seed": 7,
  "nodes": [
    {"name": "a", "listen": "127.0.1.1:4001", "proxy": "127.0.2.1:4001"},
    {"name": "b", "listen": "127.0.1.2:4001", "proxy": "127.0.2.2:4001"},
    {"name": "c", "listen": "127.0.1.3:4001", "proxy": "127.0.2.3:4001", "source": "127.0.3.3"}
  ],
  "default": {"delay_ms": 50, "rate_mbit": 100},
  "links": {
    "a->b": {"delay_ms": 10},
    "a<->b": {"delay_ms": 150, "jitter_ms": 5},
    "b<->c": {"down": true, "reset_at_s": [3, 1]}
  }
})";

std::string with_nodes(const std::string& nodes, const std::string& rest = "") {
  return R"({"nodes": [)" + nodes + "]" + rest + "}";
}

const std::string kA = R"({"name": "a", "listen": "127.0.1.1:4001", "proxy": "127.0.2.1:4001"})";
const std::string kB = R"({"name": "b", "listen": "127.0.1.2:4001", "proxy": "127.0.2.2:4001"})";

}  // namespace

TEST_CASE("a topology file gives every ordered pair its settings", "[linkemu]") {
  auto t = parse_topology(kThreeNodes);
  REQUIRE(t.ok());
  CHECK(t->seed == 7);
  REQUIRE(t->nodes.size() == 3);
  CHECK(t->nodes[0].listen == Endpoint{"127.0.1.1", 4001});
  CHECK(t->nodes[1].proxy == Endpoint{"127.0.2.2", 4001});
  CHECK(t->nodes[0].source == "127.0.1.1");  // defaults to the listen IP
  CHECK(t->nodes[2].source == "127.0.3.3");
  CHECK(t->node_by_source("127.0.3.3") == 2u);
  CHECK_FALSE(t->node_by_source("127.0.1.3").has_value());

  // One-way entries win over two-way ones, which win over the default; fields not named keep
  // the value underneath.
  CHECK(t->link(0, 1).delay_ms == 10);
  CHECK(t->link(0, 1).jitter_ms == 5);
  CHECK(t->link(0, 1).rate_mbit == 100);
  CHECK(t->link(1, 0).delay_ms == 150);
  CHECK(t->link(0, 2).delay_ms == 50);
  CHECK(t->link(2, 0).delay_ms == 50);
  CHECK(t->link(1, 2).down);
  CHECK(t->link(2, 1).down);
  CHECK_FALSE(t->link(0, 2).down);
  CHECK(t->link(2, 1).reset_at_s == std::vector<double>{1, 3});  // sorted
}

TEST_CASE("a minimal topology takes the documented defaults", "[linkemu]") {
  auto t = parse_topology(with_nodes(kA + "," + kB));
  REQUIRE(t.ok());
  CHECK(t->seed == 1);
  CHECK(t->queue_limit_bytes == 4u << 20);
  CHECK(t->link(0, 1) == LinkParams{});
}

TEST_CASE("bad topology files are refused with the offending key named", "[linkemu][bad-input]") {
  auto error_of = [](const std::string& text) {
    auto t = parse_topology(text);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
    return t.status().message();
  };
  CHECK(error_of("{not json").find("not valid JSON") != std::string::npos);
  CHECK(error_of("[1, 2]").find("expected a JSON object") != std::string::npos);
  CHECK(error_of(R"({"nodes": []})").find("nodes") != std::string::npos);
  CHECK(error_of(with_nodes(kA, R"(, "colour": 1)")).find("colour") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kA)).find("duplicate") != std::string::npos);
  CHECK(error_of(with_nodes(R"({"name": "a", "listen": "127.0.1.1:4001", "proxy": "127.0.2.1:4001", "source": "127.0.1.1"},
                               {"name": "b", "listen": "127.0.1.2:4001", "proxy": "127.0.2.2:4001", "source": "127.0.1.1"})"))
            .find("source: duplicate") != std::string::npos);
  CHECK(error_of(with_nodes(R"({"name": "a", "listen": "localhost:1", "proxy": "127.0.2.1:4001"})")).find("listen") !=
        std::string::npos);
  CHECK(error_of(with_nodes(R"({"name": "a", "listen": "127.0.1.1:70000", "proxy": "127.0.2.1:4001"})"))
            .find("bad port") != std::string::npos);
  CHECK(error_of(with_nodes(R"({"name": "a", "listen": "127.0.1.1:0", "proxy": "127.0.2.1:4001"})"))
            .find("port 0") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "links": {"a->z": {}})")).find("unknown node") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "links": {"a-b": {}})")).find("a-b") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "links": {"a->a": {}})")).find("itself") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "links": {"a->b": {"delay_ms": "far"}})")).find("delay_ms") !=
        std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "links": {"a->b": {"delay": 5}})")).find("unknown link setting") !=
        std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "default": {"delay_ms": -5})")).find("delay_ms") != std::string::npos);
  CHECK(error_of(with_nodes(kA + "," + kB, R"(, "default": {"stall_every_s": 2})")).find("stall_ms") !=
        std::string::npos);
  CHECK(error_of(with_nodes(kA, R"(, "queue_limit_kb": 1)")).find("queue_limit_kb") != std::string::npos);
}

TEST_CASE("a missing topology file is reported, not crashed on", "[linkemu][bad-input]") {
  auto t = load_topology("/nonexistent/linkemu.json");
  REQUIRE_FALSE(t.ok());
  CHECK(t.status().code() == StatusCode::kNotFound);
}
