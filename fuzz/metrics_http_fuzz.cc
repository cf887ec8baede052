// Fuzzes the `--metrics` HTTP request parser (common/metrics_http.h): a stream fed in pieces of
// input-chosen sizes (fuzz_split.h) must give the same outcome as fed whole, a parsed path starts
// with '/', and the response always has a status line and an end of headers. The listen-address
// parser gets the same stream as text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/metrics_http.h"
#include "fuzz_split.h"

using namespace noloco;
using namespace noloco::metrics;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t cap = 64 + data[0];  // small caps reach the 431 path
  HttpRequestParser split(cap);
  std::string whole;  // the pieces joined (the splitter's size bytes are not part of the stream)
  fuzz::Splitter pieces(data + 1, size - 1);
  std::span<const uint8_t> piece;
  while (pieces.next(piece)) {
    const std::string_view bytes(reinterpret_cast<const char*>(piece.data()), piece.size());
    split.feed(bytes);
    whole += bytes;
  }
  HttpRequestParser one(cap);
  one.feed(whole);
  if (one.state() != split.state() || one.error_status() != split.error_status()) std::abort();
  if (one.state() == HttpRequestParser::State::kDone) {
    if (one.path() != split.path() || one.method() != split.method()) std::abort();
    if (one.path().empty() || one.path()[0] != '/') std::abort();
  }
  const std::string r = respond(one, [] { return std::string("m 1\n"); });
  if (r.rfind("HTTP/1.1 ", 0) != 0 || r.find("\r\n\r\n") == std::string::npos) std::abort();
  if (auto a = parse_listen_address(whole); a.ok() && a->host.empty()) std::abort();
  return 0;
}
