// The default torch thread count (trainer/core/thread_policy.h): one thread for the small presets,
// torch's own default (one per core) for the large ones, and applying it sets torch's count.
#include "torch_catch.h"
#include "trainer/core/thread_policy.h"

using namespace noloco::trainer;

TEST_CASE("default threads: one for tiny and small, torch's default for medium and gpt-125m") {
  for (const char* name : {"tiny", "small"}) {
    auto m = model_preset(name);
    REQUIRE(m.ok());
    CHECK(default_threads(parameter_count(*m)) == 1);
  }
  for (const char* name : {"medium", "gpt-125m"}) {
    auto m = model_preset(name);
    REQUIRE(m.ok());
    CHECK(default_threads(parameter_count(*m)) == 0);
  }
  CHECK(default_threads(kOneThreadBelowParams - 1) == 1);
  CHECK(default_threads(kOneThreadBelowParams) == 0);
}

TEST_CASE("default threads: applying it to a small model sets torch to one thread, a large one leaves torch alone") {
  const int before = torch::get_num_threads();
  torch::set_num_threads(2);
  apply_default_threads(*model_preset("medium"));
  CHECK(torch::get_num_threads() == 2);
  apply_default_threads(*model_preset("tiny"));
  CHECK(torch::get_num_threads() == 1);
  torch::set_num_threads(before);
}
