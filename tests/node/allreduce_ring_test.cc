// The sans-IO ring all-reduce alone: N members wired in-process, bytes cut at random places,
// results against a double-precision reference mean; refused messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "ring_harness.h"
#include "trainer/node/allreduce_ring.h"

using namespace noloco;
using namespace noloco::node;
using namespace noloco::node::test;

TEST_CASE("allreduce ring gives the mean for 1 to 8 members and uneven lengths", "[allreduce]") {
  std::mt19937 rng(1);
  for (uint32_t n = 1; n <= 8; ++n) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{n > 1 ? n - 1 : 1}, size_t{n}, size_t{1000 + n}, size_t{4099}}) {
      for (uint32_t chunk : {1u, 7u, 256u}) {
        auto inputs = random_inputs(n, len, rng);
        auto ring = make_ring(inputs, chunk);
        run_ring(ring, rng);
        std::vector<std::vector<float>> out;
        for (auto& m : ring) out.push_back(m.take());
        for (size_t i = 0; i < len; ++i) {
          double mean = 0;
          for (auto& v : inputs) mean += v[i];
          mean /= n;
          INFO("n=" << n << " len=" << len << " chunk=" << chunk << " i=" << i);
          REQUIRE(std::abs(out[0][i] - mean) <= 1e-5 * (1 + std::abs(mean)));
          for (uint32_t r = 1; r < n; ++r) REQUIRE(out[r][i] == out[0][i]);  // bit-identical everywhere
        }
        uint64_t sent = 0, received = 0;  // per member they differ (segments differ in length)
        for (auto& m : ring) sent += m.bytes_sent(), received += m.bytes_received();
        REQUIRE(sent == received);
      }
    }
  }
}

TEST_CASE("allreduce ring of one member returns its vector without messages", "[allreduce]") {
  auto m = RingAllReduce::create({round_of(), 1, 0, 8}, {1.f, 2.f, 3.f});
  REQUIRE(m.ok());
  REQUIRE(m->done());
  REQUIRE_FALSE(m->next_outgoing());
  REQUIRE(m->take() == std::vector<float>{1.f, 2.f, 3.f});
}

TEST_CASE("allreduce ring sends step 1 only after step 0 of that chunk arrived", "[allreduce]") {
  auto a = RingAllReduce::create({round_of(), 3, 0, 4}, std::vector<float>(24, 1.f));
  REQUIRE(a.ok());
  int step0 = 0;
  while (a->next_outgoing()) ++step0;
  REQUIRE(step0 == 2);  // segment of 8 floats, chunks of 4; step 1 waits for the left neighbour
  REQUIRE_FALSE(a->sent_all());
}

TEST_CASE("allreduce ring refuses bad config and non-finite input", "[allreduce]") {
  REQUIRE_FALSE(RingAllReduce::create({round_of(), 0, 0, 8}, {1.f}).ok());
  REQUIRE_FALSE(RingAllReduce::create({round_of(), 2, 2, 8}, {1.f}).ok());
  REQUIRE_FALSE(RingAllReduce::create({round_of(), 2, 0, 0}, {1.f}).ok());
  REQUIRE(RingAllReduce::create({round_of(), 2, 0, 8}, {1.f, std::nanf("")}).status().code() ==
          StatusCode::kInvalidArgument);
}

namespace {

// The first message rank 0 sends in a 2-member ring, and a fresh receiver (rank 1) for it.
struct Pair {
  Bytes msg;
  RingAllReduce receiver;
};
Pair first_message(RoundId sender_round = round_of(), uint32_t sender_chunk = 4) {
  auto s = RingAllReduce::create({sender_round, 2, 0, sender_chunk}, std::vector<float>(8, 1.f));
  auto r = RingAllReduce::create({round_of(), 2, 1, 4}, std::vector<float>(8, 2.f));
  REQUIRE(s.ok());
  REQUIRE(r.ok());
  auto msg = s->next_outgoing();
  REQUIRE(msg);
  return {*msg, std::move(*r)};
}

void put_u32(Bytes& b, size_t off, uint32_t v) { std::memcpy(b.data() + off, &v, 4); }

}  // namespace

TEST_CASE("allreduce ring refuses corrupted, out-of-order and wrong-round messages", "[allreduce]") {
  SECTION("a clean first message is accepted") {
    auto p = first_message();
    REQUIRE(p.receiver.feed(p.msg).ok());
  }
  SECTION("bad magic") {
    auto p = first_message();
    p.msg[0] = 'X';
    REQUIRE(p.receiver.feed(p.msg).code() == StatusCode::kCorrupt);
  }
  SECTION("another outer step") {
    auto p = first_message(round_of(8));
    auto st = p.receiver.feed(p.msg);
    REQUIRE(st.code() == StatusCode::kProtocolError);
    REQUIRE_THAT(st.message(), Catch::Contains("outer step 8"));
  }
  SECTION("another attempt") {
    auto p = first_message(round_of(7, 1));
    REQUIRE(p.receiver.feed(p.msg).code() == StatusCode::kProtocolError);
  }
  SECTION("another member list") {
    RoundId r = round_of();
    r.members_tag = 43;
    auto p = first_message(r);
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("member list"));
  }
  SECTION("another chunk size") {
    auto p = first_message(round_of(), 8);
    REQUIRE(p.receiver.feed(p.msg).code() == StatusCode::kProtocolError);
  }
  SECTION("a skipped chunk (out of order)") {
    auto p = first_message();
    put_u32(p.msg, 56, 4);  // offset of the second chunk
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("out of order"));
  }
  SECTION("a later step first") {
    auto p = first_message();
    put_u32(p.msg, 44, 1);
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("out of order"));
  }
  SECTION("wrong sender rank") {
    auto p = first_message();
    put_u32(p.msg, 40, 1);
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("left neighbour"));
  }
  SECTION("a count over the chunk size is refused before the payload") {
    auto p = first_message();
    put_u32(p.msg, 60, 5);
    REQUIRE(p.receiver.feed(ByteView(p.msg.data(), kAllReduceHeaderBytes)).code() == StatusCode::kTooLarge);
  }
  SECTION("a short chunk") {
    auto p = first_message();
    put_u32(p.msg, 60, 3);
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("chunk length"));
  }
  SECTION("a non-finite value, and the failure is final") {
    auto p = first_message();
    const float inf = std::numeric_limits<float>::infinity();
    std::memcpy(p.msg.data() + kAllReduceHeaderBytes + 8, &inf, 4);
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("not finite"));
    REQUIRE_FALSE(p.receiver.error().ok());
    REQUIRE_FALSE(p.receiver.next_outgoing());
    REQUIRE_FALSE(p.receiver.feed(Bytes{1}).ok());
  }
  SECTION("a non-finite value inside a whole block of a long chunk") {
    auto s = RingAllReduce::create({round_of(), 2, 0, 4096}, std::vector<float>(8192, 1.f));
    auto r = RingAllReduce::create({round_of(), 2, 1, 4096}, std::vector<float>(8192, 2.f));
    REQUIRE(s.ok());
    REQUIRE(r.ok());
    auto msg = s->next_outgoing();
    REQUIRE(msg);
    const float nan = std::nanf("");
    std::memcpy(msg->data() + kAllReduceHeaderBytes + 4 * 1500, &nan, 4);
    REQUIRE_THAT(r->feed(*msg).message(), Catch::Contains("not finite"));
  }
  SECTION("bytes after the last message") {
    std::mt19937 rng(3);
    auto ring = make_ring({{1.f, 2.f}, {3.f, 4.f}}, 4);
    run_ring(ring, rng);
    REQUIRE_THAT(ring[1].feed(Bytes{0}).message(), Catch::Contains("after the last"));
  }
}
