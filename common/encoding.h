// Text encodings for ids and keys: hex and base58btc (the Bitcoin alphabet libp2p uses).
#pragma once

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco {

std::string hex_encode(ByteView in);
Result<Bytes> hex_decode(std::string_view in);  // accepts upper and lower case, no separators

std::string base58_encode(ByteView in);
Result<Bytes> base58_decode(std::string_view in);

}  // namespace noloco
