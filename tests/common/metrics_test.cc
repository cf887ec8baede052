// The metrics registry and its Prometheus text exposition (common/metrics.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "common/metrics.h"

using namespace noloco;
using namespace noloco::metrics;

TEST_CASE("metrics: HELP and TYPE lines precede the samples, families in registration order", "[metrics]") {
  Registry r;
  auto g = r.add(Type::kGauge, "noloco_b_step", "Steps taken.");
  auto c = r.add(Type::kCounter, "noloco_a_events_total", "Events seen.", {"kind"});
  REQUIRE(g.ok());
  REQUIRE(c.ok());
  (*g)->only().set(42);
  (*c)->with({"z"})->add(2);
  (*c)->with({"a"})->add(1);
  CHECK(r.render() ==
        "# HELP noloco_b_step Steps taken.\n"
        "# TYPE noloco_b_step gauge\n"
        "noloco_b_step 42\n"
        "# HELP noloco_a_events_total Events seen.\n"
        "# TYPE noloco_a_events_total counter\n"
        "noloco_a_events_total{kind=\"a\"} 1\n"
        "noloco_a_events_total{kind=\"z\"} 2\n");
}

TEST_CASE("metrics: label values and help text are escaped", "[metrics]") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("x\\y\nz \"q\"") == "x\\\\y\\nz \"q\"");  // quotes stay in HELP
  Registry r;
  auto f = r.add(Type::kGauge, "g", "line one\nline two", {"why"});
  REQUIRE(f.ok());
  (*f)->with({"say \"hi\"\\"})->set(1);
  CHECK(r.render() == "# HELP g line one\\nline two\n# TYPE g gauge\ng{why=\"say \\\"hi\\\"\\\\\"} 1\n");
}

TEST_CASE("metrics: values print as integers, shortest doubles, NaN and signed infinities", "[metrics]") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(-3) == "-3");
  CHECK(format_value(123456789012.0) == "123456789012");
  CHECK(format_value(0.1) == "0.1");
  CHECK(std::stod(format_value(5.536948204040527)) == 5.536948204040527);
  CHECK(format_value(std::nan("")) == "NaN");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("metrics: bad names, counters without _total and duplicates are refused", "[metrics]") {
  Registry r;
  CHECK(r.add(Type::kGauge, "9lives", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kGauge, "has-dash", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kGauge, "", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kCounter, "events", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kGauge, "ok", "x", {"__reserved"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kGauge, "ok", "x", {"a:b"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(r.add(Type::kGauge, "ns:ok_name", "x", {"label_1"}).ok());
  CHECK(r.add(Type::kGauge, "ns:ok_name", "x").status().code() == StatusCode::kAlreadyExists);
  CHECK(r.render().find("ns:ok_name") != std::string::npos);
}

TEST_CASE("metrics: counters ignore negative and non-finite amounts, gauges do not", "[metrics]") {
  Registry r;
  Series& c = (*r.add(Type::kCounter, "c_total", "c"))->only();
  Series& g = (*r.add(Type::kGauge, "g", "g"))->only();
  c.add(2.5);
  c.add(-1);
  c.add(std::nan(""));
  g.add(2.5);
  g.add(-3);
  CHECK(c.value() == 2.5);
  CHECK(g.value() == -0.5);
}

TEST_CASE("metrics: wrong label counts and series over the cap get no series", "[metrics]") {
  Registry r;
  Family* f = *r.add(Type::kGauge, "g", "g", {"a", "b"});
  CHECK(f->with({"x"}) == nullptr);
  CHECK(f->with({"x", "y", "z"}) == nullptr);
  for (size_t i = 0; i < Family::kMaxSeries; ++i) REQUIRE(f->with({"v", std::to_string(i)}) != nullptr);
  CHECK(f->with({"v", "one more"}) == nullptr);
  CHECK(f->with({"v", "0"}) != nullptr);  // existing series still found
}

TEST_CASE("metrics: concurrent adds from several threads are all counted", "[metrics]") {
  Registry r;
  Family* f = *r.add(Type::kCounter, "hits_total", "h", {"thread"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([f] {
      for (int i = 0; i < 10000; ++i) {
        f->with({"shared"})->add(1);
        f->with({"shared"})->add(0.5);
      }
    });
  std::string rendered;
  for (int i = 0; i < 20; ++i) rendered = r.render();  // rendering while others write
  for (auto& th : threads) th.join();
  CHECK(f->with({"shared"})->value() == 60000);
}
