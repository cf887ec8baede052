// The ring all-reduce with lossy value encodings (bf16, int8, int4): results within the
// documented bound of a double-precision mean and bit-identical on every member, exact wire
// byte counts, and refused encodings and malformed encoded chunks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "ring_harness.h"
#include "trainer/node/allreduce_ring.h"

using namespace noloco;
using namespace noloco::node;
using namespace noloco::node::test;
using codec::Mode;

namespace {

// Per element: the exact mean, and the `m` that ring_error_bound takes (sum of |x| over members;
// for block modes its largest value within 127 elements either side, which covers the block).
struct Reference {
  std::vector<double> mean, m;
};
Reference reference(const std::vector<std::vector<float>>& in, Mode mode) {
  const size_t len = in[0].size();
  Reference r{std::vector<double>(len, 0.0), std::vector<double>(len, 0.0)};
  std::vector<double> abs_sum(len, 0.0);
  for (const auto& v : in)
    for (size_t i = 0; i < len; ++i) r.mean[i] += v[i], abs_sum[i] += std::abs(static_cast<double>(v[i]));
  const bool blocks = mode == Mode::kInt8 || mode == Mode::kInt4;
  for (size_t i = 0; i < len; ++i) {
    r.mean[i] /= static_cast<double>(in.size());
    const size_t lo = blocks ? i - std::min<size_t>(i, kAllReduceBlock - 1) : i;
    const size_t hi = blocks ? std::min(len, i + kAllReduceBlock) : i + 1;
    r.m[i] = *std::max_element(abs_sum.begin() + lo, abs_sum.begin() + hi);
  }
  return r;
}

}  // namespace

TEST_CASE("allreduce ring in bf16, int8 and int4 stays within its error bound for 1 to 8 members", "[allreduce]") {
  std::mt19937 rng(5);
  for (Mode mode : {Mode::kBf16, Mode::kInt8, Mode::kInt4}) {
    for (uint32_t n = 1; n <= 8; ++n) {
      for (size_t len : {size_t{0}, size_t{1}, size_t{n}, size_t{1000 + n}, size_t{4099}}) {
        for (uint32_t chunk : {7u, 300u}) {
          auto inputs = random_inputs(n, len, rng);
          if (len > 10) inputs[0][len / 2] = 1e4f;  // an outlier: its block's scale is large
          auto ring = make_ring(inputs, chunk, round_of(), mode);
          run_ring(ring, rng);
          uint64_t sent = 0, received = 0;
          for (auto& m : ring) sent += m.bytes_sent(), received += m.bytes_received();
          REQUIRE(sent == received);
          REQUIRE(sent == (n > 1 ? expected_total_bytes(mode, n, len, chunk) : 0));
          std::vector<std::vector<float>> out;
          for (auto& m : ring) out.push_back(m.take());
          const Reference ref = reference(inputs, mode);
          for (size_t i = 0; i < len; ++i) {
            INFO(codec::mode_name(mode) << " n=" << n << " len=" << len << " chunk=" << chunk << " i=" << i);
            REQUIRE(std::abs(out[0][i] - ref.mean[i]) <= ring_error_bound(mode, n, ref.m[i]));
            for (uint32_t r = 1; r < n; ++r) REQUIRE(out[r][i] == out[0][i]);  // bit-identical everywhere
          }
        }
      }
    }
  }
}

TEST_CASE("allreduce ring error bound is tight enough to mean something", "[allreduce]") {
  // int8 at 8 members: about 1/254 of the block's sum of magnitudes, i.e. N/254 of a typical |x|.
  REQUIRE(ring_error_bound(Mode::kInt8, 8, 1.0) < 1.02 / 254 * 1.01);
  REQUIRE(ring_error_bound(Mode::kBf16, 8, 1.0) < 1.02 / 256);
  REQUIRE(ring_error_bound(Mode::kFp32, 8, 1.0) < 1e-6);
  REQUIRE(ring_error_bound(Mode::kInt8, 2, 1.0) > ring_error_bound(Mode::kBf16, 2, 1.0));
}

TEST_CASE("allreduce ring bytes: bf16 is half of fp32, int8 a quarter plus one scale per 128 values", "[allreduce]") {
  std::mt19937 rng(9);
  const size_t len = 10007;
  const uint32_t chunk = 1000;
  for (uint32_t n : {2u, 3u, 5u, 8u}) {
    const auto inputs = random_inputs(n, len, rng);
    uint64_t sent[4] = {};
    for (Mode mode : {Mode::kFp32, Mode::kBf16, Mode::kInt8}) {
      auto ring = make_ring(inputs, chunk, round_of(), mode);
      run_ring(ring, rng);
      for (auto& m : ring) sent[static_cast<int>(mode)] += m.bytes_sent();
    }
    // Every message has one header; chunks of 1000 values make 8 blocks (7 of 128, one of 104).
    uint64_t messages = 0;
    for (uint32_t s = 0; s < n; ++s) messages += (len / n + (s < len % n) + chunk - 1) / chunk;
    messages *= 2 * (n - 1);
    const uint64_t headers = messages * kAllReduceHeaderBytes;
    const uint64_t values = uint64_t{2} * (n - 1) * len;  // each of the 2(N-1) steps sends every value once
    INFO("n=" << n);
    REQUIRE(sent[0] == headers + 4 * values);
    REQUIRE(sent[1] == headers + 2 * values);
    uint64_t blocks = 0;
    for (uint32_t s = 0; s < n; ++s) {
      size_t seg = len / n + (s < len % n);
      for (; seg > 0; seg -= std::min<size_t>(seg, chunk)) blocks += (std::min<size_t>(seg, chunk) + 127) / 128;
    }
    REQUIRE(sent[2] == headers + values + 4 * blocks * 2 * (n - 1));
  }
}

namespace {

// The first message rank 0 sends in a 2-member ring with `send` encoding, and a receiver (rank 1)
// using `recv`.
struct Pair {
  Bytes msg;
  RingAllReduce receiver;
};
Pair first_message(Mode send, Mode recv, size_t len = 512, uint32_t chunk = 256) {
  std::vector<float> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = static_cast<float>(i % 13) - 6.f;
  auto s = RingAllReduce::create({round_of(), 2, 0, chunk, send}, v);
  auto r = RingAllReduce::create({round_of(), 2, 1, chunk, recv}, v);
  REQUIRE(s.ok());
  REQUIRE(r.ok());
  auto msg = s->next_outgoing();
  REQUIRE(msg);
  return {*msg, std::move(*r)};
}

}  // namespace

TEST_CASE("allreduce ring refuses a member with another encoding", "[allreduce]") {
  auto p = first_message(Mode::kBf16, Mode::kInt8);
  const Status st = p.receiver.feed(p.msg);
  REQUIRE(st.code() == StatusCode::kProtocolError);
  REQUIRE_THAT(st.message(), Catch::Contains("encodes values as bf16") && Catch::Contains("we use int8"));
  auto q = first_message(Mode::kFp32, Mode::kBf16);
  REQUIRE_THAT(q.receiver.feed(q.msg).message(), Catch::Contains("encodes values as fp32"));
}

TEST_CASE("allreduce ring sends the encoded sizes and refuses malformed encoded chunks", "[allreduce]") {
  const size_t payload = kAllReduceHeaderBytes;  // where the payload starts
  SECTION("sizes of one 256-value chunk") {
    REQUIRE(first_message(Mode::kFp32, Mode::kFp32).msg.size() == payload + 1024);
    REQUIRE(first_message(Mode::kBf16, Mode::kBf16).msg.size() == payload + 512);
    REQUIRE(first_message(Mode::kInt8, Mode::kInt8).msg.size() == payload + 8 + 256);
    REQUIRE(first_message(Mode::kInt4, Mode::kInt4).msg.size() == payload + 8 + 128);
  }
  SECTION("a clean int8 chunk is accepted") {
    auto p = first_message(Mode::kInt8, Mode::kInt8);
    REQUIRE(p.receiver.feed(p.msg).ok());
  }
  SECTION("a NaN scale") {
    auto p = first_message(Mode::kInt8, Mode::kInt8);
    const float nan = std::nanf("");
    std::memcpy(p.msg.data() + payload + 4, &nan, 4);
    const Status st = p.receiver.feed(p.msg);
    REQUIRE(st.code() == StatusCode::kProtocolError);
    REQUIRE_THAT(st.message(), Catch::Contains("bad int8 chunk") && Catch::Contains("scale"));
    REQUIRE_FALSE(p.receiver.next_outgoing());  // the failure is final
  }
  SECTION("an infinite or negative scale") {
    for (float bad : {std::numeric_limits<float>::infinity(), -1.f}) {
      auto p = first_message(Mode::kInt8, Mode::kInt8);
      std::memcpy(p.msg.data() + payload, &bad, 4);
      REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("scale"));
    }
  }
  SECTION("an int8 code the encoder never writes") {
    auto p = first_message(Mode::kInt8, Mode::kInt8);
    p.msg[payload + 8 + 17] = 0x80;
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("-128"));
  }
  SECTION("a NaN bf16 value") {
    auto p = first_message(Mode::kBf16, Mode::kBf16);
    p.msg[payload + 2 * 40] = 0xC0, p.msg[payload + 2 * 40 + 1] = 0x7F;
    REQUIRE_THAT(p.receiver.feed(p.msg).message(), Catch::Contains("non-finite bf16"));
  }
  SECTION("a truncated chunk runs into the next header and is refused") {
    // Two chunks in step 0; the first loses its last byte.
    auto s = RingAllReduce::create({round_of(), 2, 0, 128, Mode::kInt8}, std::vector<float>(512, 1.f));
    auto r = RingAllReduce::create({round_of(), 2, 1, 128, Mode::kInt8}, std::vector<float>(512, 1.f));
    REQUIRE(s.ok());
    REQUIRE(r.ok());
    Bytes stream;
    int messages = 0;
    for (; auto msg = s->next_outgoing(); ++messages)
      stream.insert(stream.end(), msg->begin(), msg->end() - (messages == 0 ? 1 : 0));
    REQUIRE(messages == 2);
    REQUIRE(r->feed(stream).code() == StatusCode::kCorrupt);
  }
  SECTION("an unknown encoding id and the old fp32-only version") {
    auto p = first_message(Mode::kInt8, Mode::kInt8);
    Bytes unknown = p.msg;
    unknown[6] = 9;
    REQUIRE(decode_allreduce_header(unknown).status().code() == StatusCode::kUnsupported);
    Bytes v1 = p.msg;
    v1[4] = 1;
    REQUIRE_THAT(decode_allreduce_header(v1).status().message(), Catch::Contains("older noloco"));
    Bytes reserved = p.msg;
    reserved[7] = 1;
    REQUIRE(decode_allreduce_header(reserved).status().code() == StatusCode::kCorrupt);
  }
}

TEST_CASE("allreduce ring refuses to encode a partial sum that overflowed", "[allreduce]") {
  const float big = std::numeric_limits<float>::max();
  auto ring = make_ring({{big, 1.f}, {big, 1.f}, {big, 1.f}}, 4, round_of(), Mode::kBf16);
  for (int guard = 0; guard < 100; ++guard) {
    for (size_t r = 0; r < ring.size(); ++r)
      while (auto msg = ring[r].next_outgoing()) (void)ring[(r + 1) % ring.size()].feed(*msg);
  }
  bool refused = false;
  for (auto& m : ring) refused |= m.error().message().find("overflowed") != std::string::npos;
  REQUIRE(refused);
}
