#include "common/msgpack_safe.h"

namespace noloco {

Result<msgpack::object_handle> msgpack_unpack_bounded(ByteView in, const MsgpackLimits& limits) {
  msgpack::unpack_limit limit(limits.max_array, limits.max_map, limits.max_str, limits.max_bin,
                              /*ext=*/0, limits.max_depth);
  size_t offset = 0;
  try {
    msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(in.data()), in.size(), offset, nullptr,
                        nullptr, limit);
    if (offset != in.size()) return corrupt("msgpack: trailing bytes after the message");
    return handle;
  } catch (const msgpack::depth_size_overflow&) {  // derives from size_overflow: catch it first
    return too_large("msgpack: nesting deeper than the limit");
  } catch (const msgpack::size_overflow& e) {
    return too_large(std::string("msgpack: a length exceeds its limit (") + e.what() + ")");
  } catch (const msgpack::insufficient_bytes&) {
    return truncated("msgpack: message truncated");
  } catch (const std::exception& e) {
    return corrupt(std::string("msgpack: malformed message (") + e.what() + ")");
  }
}

}  // namespace noloco
