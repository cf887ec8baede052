// libFuzzer target for the training node's wire formats. The first input byte picks the mode:
//   0: exchange payload stream, fed to PayloadReader in input-chosen pieces (fuzz_split.h);
//   1: the same, but the harness frames the next bytes as the header and appends its SHA-256,
//      so the fuzzer gets past the header digest to the msgpack decoder, check_header and the
//      tensor frames;
//   2: decode_state_request;  3: decode_state_response (then into a StateDownload);
//   4: manifest_from_json;    5: a request answered from a fixed snapshot, fed to a download.
// Any crash, sanitizer report or broken invariant (__builtin_trap) is a bug.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "common/varint.h"
#include "fuzz_split.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/run_manifest.h"
#include "trainer/node/state_wire.h"

using namespace noloco;
using namespace noloco::node;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

ExchangeExpectations expectations() {
  ExchangeExpectations e;
  e.run_id = "r";
  e.numel = 16;
  e.form = WireForm::kDeltaPhi;
  e.max_tensor_bytes = 4096;
  return e;  // any sender
}

void read_payload(const uint8_t* data, size_t size, Bytes prefix) {
  PayloadReader reader(expectations());
  bool failed = !reader.feed(prefix).ok();
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  while (!failed && split.next(piece)) failed = !reader.feed(piece).ok();
  if (failed) {
    check(!reader.done() && !reader.finish().ok() && !reader.take().ok());
    return;
  }
  const Status fin = reader.finish();
  check(fin.ok() == reader.done());
  if (!reader.done()) return;
  auto p = reader.take();
  check(p.ok());
  if (!p->header.error.empty()) {
    check(p->tensors.empty());
    return;
  }
  // What the reader accepted passes the checks it claims, and reads back the same.
  check(check_header(p->header, expectations()).ok());
  check(p->tensors.size() == p->header.tensors.size());
  for (size_t i = 0; i < p->tensors.size(); ++i) {
    check(p->tensors[i].size() == p->header.tensors[i].encoded_bytes);
    const Sha256Digest d = sha256(p->tensors[i]);
    check(Bytes(d.begin(), d.end()) == p->header.tensors[i].sha256);
  }
  PayloadReader again(expectations());
  check(again.feed(encode_payload(*p)).ok() && again.done());
  check(again.take()->tensors == p->tensors);
}

void state_response(ByteView in) {
  auto r = decode_state_response(in);
  if (!r.ok()) return;
  check(encode_state_response(*r) == Bytes(in.begin(), in.end()));  // canonical
  StateDownload dl("r", 1 << 20);
  const Status st = dl.on_response(*r);
  if (st.ok()) check(dl.received() == r->chunk.size() && dl.received() <= dl.total());
  else check(dl.received() == 0);
}

void manifest(ByteView in) {
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  auto m = manifest_from_json(text);
  if (!m.ok()) return;
  check(m->validate().ok());
  const std::string canonical = manifest_to_json(*m);
  auto again = manifest_from_json(canonical);
  check(again.ok() && manifest_to_json(*again) == canonical);
  check(check_run_id(*again, run_id_of(*m)).ok());
}

void answer_and_download(ByteView in) {
  auto q = decode_state_request(in);
  if (!q.ok()) return;
  check(encode_state_request(*q) == Bytes(in.begin(), in.end()));
  static const Bytes snapshot(5000, 0x42);
  static const Sha256Digest digest = sha256(snapshot);
  const Bytes sha(digest.begin(), digest.end());
  const StateResponse a = answer_state_request(*q, "r", snapshot, sha, 3, 60);
  auto wire = decode_state_response(encode_state_response(a));
  check(wire.ok());
  if (a.error.empty()) {
    check(a.offset == q->offset && !a.chunk.empty() && a.chunk.size() <= q->max_len);
    check(std::equal(a.chunk.begin(), a.chunk.end(), snapshot.begin() + static_cast<long>(a.offset)));
  }
  StateDownload dl("r", 1 << 20);
  const Status st = dl.on_response(*wire);
  // A fresh download accepts only an answer that starts at 0.
  if (st.ok()) check(q->offset == 0 && a.error.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 6;
  ++data, --size;
  const ByteView in(data, size);
  switch (mode) {
    case 0:
      read_payload(data, size, {});
      break;
    case 1: {
      if (size < 2) return 0;
      const size_t len = std::min<size_t>((size_t{data[0]} << 8 | data[1]), size - 2);
      const Bytes body(data + 2, data + 2 + len);
      const Sha256Digest d = sha256(body);
      Bytes prefix;
      put_varint(prefix, body.size() + d.size());
      append(prefix, body);
      prefix.insert(prefix.end(), d.begin(), d.end());
      read_payload(data + 2 + len, size - 2 - len, std::move(prefix));
      break;
    }
    case 2: {
      auto q = decode_state_request(in);
      if (q.ok()) check(encode_state_request(*q) == Bytes(in.begin(), in.end()));
      break;
    }
    case 3:
      state_response(in);
      break;
    case 4:
      manifest(in);
      break;
    case 5:
      answer_and_download(in);
      break;
  }
  return 0;
}
