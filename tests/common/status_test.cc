#include <catch2/catch.hpp>

#include "common/status.h"

using namespace noloco;

static Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("not positive: " + std::to_string(x));
  return x;
}

static Result<int> doubled(int x) {
  NOLOCO_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return v * 2;
}

TEST_CASE("Result carries a value or a status", "[status]") {
  auto ok = doubled(4);
  REQUIRE(ok.ok());
  CHECK(*ok == 8);
  auto bad = doubled(-1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().to_string() == "InvalidArgument: not positive: -1");
  CHECK(bad.status().context("flag --x").message() == "flag --x: not positive: -1");
}
