// Bounded msgpack decoding for bytes that came from a peer. msgpack-c throws on malformed input
// and, left to its defaults, trusts array/str/bin lengths up to 4 GiB; this wrapper caps every
// length and the nesting depth, insists the buffer holds exactly one object, and turns every
// failure into a Status (our protocols' payloads are msgpack: docs/architecture.md).
#pragma once

#include <msgpack.hpp>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco {

struct MsgpackLimits {
  size_t max_array = 1024;       // elements in any one array
  size_t max_map = 64;           // pairs in any one map
  size_t max_str = 4096;         // bytes in any one string
  size_t max_bin = 1 << 20;      // bytes in any one bin
  size_t max_depth = 8;
};

// kCorrupt for malformed or trailing bytes, kTooLarge when a limit is hit.
Result<msgpack::object_handle> msgpack_unpack_bounded(ByteView in, const MsgpackLimits& limits);

// obj.as<T>() without exceptions: kCorrupt naming `what` if obj is not a T.
template <typename T>
Result<T> msgpack_as(const msgpack::object& obj, const char* what) {
  try {
    return obj.as<T>();
  } catch (const std::exception&) {
    return corrupt(std::string("msgpack: field '") + what + "' has the wrong type");
  }
}

}  // namespace noloco
