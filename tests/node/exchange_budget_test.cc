// The default exchange budget (trainer/node/node_run.h): a base per method plus the time a
// payload of the run's size needs on the reference link, so that big models are not cut off.
#include <catch2/catch.hpp>

#include "trainer/node/node_run.h"

using namespace noloco::node;

TEST_CASE("exchange budget: small models keep the method's base, gpt-125m gets time for its payload", "[budget]") {
  NodeOptions o;  // --exchange-timeout not given
  const uint64_t tiny = outer_step_wire_bytes("noloco", "bf16", "delta_phi", 120'000);
  CHECK(tiny == 480'000);  // Δ and φ, 2 bytes a value
  CHECK(exchange_budget_for(o, "noloco", tiny) == Approx(10.0).epsilon(0.01));
  CHECK(exchange_budget_for(o, "diloco", tiny) == Approx(300.0).epsilon(0.01));

  // gpt-125m (about 86M values): 344 MB in bf16 before zstd, ~55 s at 50 Mbit/s on top of the base;
  // the measured 100 Mbit/s transfer was 22-34 s (docs/benchmarks.md).
  const uint64_t big = outer_step_wire_bytes("noloco", "bf16", "delta_phi", 86'000'000);
  CHECK(big == 344'000'000);
  CHECK(exchange_budget_for(o, "noloco", big) == Approx(10.0 + 344e6 * 8 / 50e6));
  CHECK(exchange_budget_for(o, "noloco", big) > 34.0);

  // The codec and the wire form change the size; int8 carries a scale per 128-value block.
  CHECK(outer_step_wire_bytes("noloco", "int8", "delta_phi", 1'000'000) > 2'000'000);
  CHECK(outer_step_wire_bytes("noloco", "int8", "delta_phi", 1'000'000) < 2'200'000);
  CHECK(outer_step_wire_bytes("noloco", "bf16", "theta", 1'000'000) == 2'000'000);
  CHECK(outer_step_wire_bytes("diloco", "fp32", "delta_phi", 1'000'000) == 8'000'000);
}

TEST_CASE("exchange budget: --exchange-timeout wins over the scaled default", "[budget]") {
  NodeOptions o;
  o.exchange_budget_s = 5;
  CHECK(exchange_budget_for(o, "noloco", 344'000'000) == 5.0);
  CHECK(exchange_budget_for(o, "diloco", 0) == 5.0);
}
