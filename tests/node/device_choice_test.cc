// The device `noloco join --device auto` trains on (trainer/node/device_choice.h), from the facts.
#include <catch2/catch.hpp>

#include "trainer/node/device_choice.h"

namespace noloco::node {

TEST_CASE("device choice: auto takes a GPU only when libtorch has CUDA and one is visible", "[device]") {
  CHECK(choose_device("auto", {true, 1}).value() == "cuda");
  CHECK(choose_device("auto", {true, 0}).value() == "cpu");   // CUDA libtorch, no GPU
  CHECK(choose_device("auto", {false, 0}).value() == "cpu");  // CPU-only libtorch (Debian's)
  CHECK(choose_device("cpu", {true, 2}).value() == "cpu");
  CHECK(choose_device("cuda", {true, 2}).value() == "cuda");
}

TEST_CASE("device choice: cuda without a usable GPU, or another word, is refused with the reason", "[device]") {
  auto no_cuda = choose_device("cuda", {false, 0});
  REQUIRE_FALSE(no_cuda.ok());
  CHECK(no_cuda.status().message().find("no CUDA") != std::string::npos);
  auto no_gpu = choose_device("cuda", {true, 0});
  REQUIRE_FALSE(no_gpu.ok());
  CHECK(no_gpu.status().message().find("no CUDA GPU") != std::string::npos);
  CHECK(choose_device("tpu", {true, 1}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace noloco::node
