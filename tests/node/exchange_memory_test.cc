// Peak memory of one exchange against trainer/node/exchange_memory.h (docs/memory.md, "One
// exchange"): build our payload, take the partner's frame by frame as the network would, verify
// it and apply the outer step; the growth of the peak resident set over that must stay within the
// budget. Memory, not time: the figure does not depend on machine load. The model is the small
// preset widened (d_model 512, 13 M parameters) so that the payloads, not the fixed working
// buffers, dominate the figure.
#include "../trainer/torch_catch.h"

#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../trainer/test_corpus.h"
#include "trainer/core/replica.h"
#include "trainer/node/exchange_memory.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/node_payload.h"
#include "trainer/node/payload_spool.h"

using namespace noloco;
using namespace noloco::node;

namespace {

int64_t proc_status_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size())) * 1024;
  return -1;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

std::unique_ptr<trainer::Replica> make(const Bytes* corpus, uint64_t noise_seed) {
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset("small");
  rc.model.d_model = 512;
  rc.model.n_head = 8;
  rc.batch = 1;
  rc.seed = 7;  // the same start on both sides, as in a run
  rc.inner.schedule = trainer::LrSchedule{1e-3, 1, 100, 0.1};
  auto r = trainer::Replica::create(rc, corpus, 0, 1);
  REQUIRE(r.ok());
  torch::NoGradGuard ng;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(noise_seed);
  (*r)->theta().add_(torch::randn((*r)->theta().sizes(), gen) * 1e-3);  // a phase's worth of drift
  return std::move(*r);
}

struct Measured {
  int64_t growth = 0;         // peak resident set over the exchange, above where it started
  uint64_t payload_bytes = 0; // the partner's payload on the wire
};

// One exchange from our side; the partner's payload was built (spooled) before the measurement.
Measured exchange(bool spool, codec::EncodeOptions opts) {
  const Bytes corpus = trainer::testing::synthetic_text(1 << 20);
  auto self = make(&corpus, 1), peer = make(&corpus, 2);
  const std::string dir = std::filesystem::temp_directory_path().string();
  const auto numel = static_cast<uint64_t>(self->phi().numel());
  PayloadSettings ps;
  ps.codec = opts;
  ps.run_id = "mem";
  ps.sender = "peer";
  ps.spool_dir = dir;
  auto theirs = build_payload(*peer, ps);
  REQUIRE(theirs.ok());
  ps.sender = "self";
  ps.spool_dir = spool ? dir : "";
  ExchangeExpectations e{"mem", numel, WireForm::kDeltaPhi, numel * 4 + numel / 64 + 4096, "peer"};

  malloc_trim(0);
  REQUIRE(reset_peak_rss());
  const int64_t before = proc_status_bytes("VmRSS");
  REQUIRE(before > 0);
  {
    auto mine = build_payload(*self, ps);
    REQUIRE(mine.ok());
    PayloadReader reader(e);
    for (size_t i = 0; i < theirs->frame_count(); ++i) {
      auto frame = theirs->frame(i);
      REQUIRE(frame.ok());
      REQUIRE(reader.feed(*frame).ok());
    }
    auto got = reader.take();
    REQUIRE(got.ok());
    auto c = verify_payload(std::move(*got), *self, e, VerifyLimits{});
    REQUIRE(c.ok());
    REQUIRE(apply_outer_step(*self, std::span<const PeerContribution>(&*c, 1), trainer::NolocoParams{},
                             WireForm::kDeltaPhi)
                .ok());
  }
  return {proc_status_bytes("VmHWM") - before, theirs->size()};
}

}  // namespace

TEST_CASE("payload spool: a spooled payload is the in-memory one byte for byte", "[node][payload]") {
  const Bytes corpus = trainer::testing::synthetic_text(1 << 16);
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset("tiny");
  rc.batch = 1;
  auto r = trainer::Replica::create(rc, &corpus, 0, 1);
  REQUIRE(r.ok());
  for (WireForm form : {WireForm::kDeltaPhi, WireForm::kTheta}) {
    PayloadSettings ps;
    ps.codec = codec::EncodeOptions{codec::Mode::kInt8, true};
    ps.form = form;
    ps.run_id = "spool";
    ps.sender = "me";
    auto in_memory = build_payload(**r, ps);
    ps.spool_dir = std::filesystem::temp_directory_path().string();
    auto spooled = build_payload(**r, ps);
    REQUIRE(in_memory.ok());
    REQUIRE(spooled.ok());
    CHECK(spooled->frames.empty());
    REQUIRE(spooled->frame_count() == in_memory->frame_count());
    CHECK(spooled->size() == in_memory->size());
    CHECK(*spooled->joined() == *in_memory->joined());
    CHECK_FALSE(spooled->frame(spooled->frame_count()).ok());
  }
  PayloadSettings bad;
  bad.spool_dir = "/nonexistent-noloco-folder";
  auto p = build_payload(**r, bad);
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == StatusCode::kIoError);
}

// The sanitizers' allocators and shadow memory are not the node's: RSS figures mean nothing there.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST_CASE("exchange memory: with our payload spooled the peak stays within the budget", "[node][memory]") {
  for (auto opts : {codec::EncodeOptions{codec::Mode::kBf16, true}, codec::EncodeOptions{codec::Mode::kInt8}}) {
    const Measured m = exchange(true, opts);
    const ExchangeMemoryBudget b = exchange_memory_budget(m.payload_bytes, true);
    INFO("codec " << static_cast<int>(opts.mode) << (opts.zstd ? "+zstd" : "") << ": peak growth "
                  << m.growth / 1048576.0 << " MiB, payload " << m.payload_bytes / 1048576.0 << " MiB, budget "
                  << b.total() / 1048576.0 << " MiB");
    CHECK(m.growth > b.peer_payload);  // the measurement sees the partner's payload
    CHECK(m.growth <= b.total());
  }
}

TEST_CASE("exchange memory: our payload kept in the heap costs a second payload", "[node][memory]") {
  // The same exchange without the spool: what the budget above leaves out is really there.
  const Measured m = exchange(false, codec::EncodeOptions{codec::Mode::kBf16, true});
  INFO("peak growth " << m.growth / 1048576.0 << " MiB, payload " << m.payload_bytes / 1048576.0 << " MiB");
  CHECK(m.growth > exchange_memory_budget(m.payload_bytes, true).total());
  CHECK(m.growth <= exchange_memory_budget(m.payload_bytes, false).total());
}
#endif
