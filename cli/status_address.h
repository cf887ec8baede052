// The address file of a live node (docs/status.md): `noloco run --metrics ADDR --db DIR` writes
// DIR/noloco-http.json once its store is open, saying where its /metrics and /status endpoint
// listens, and removes it when it exits normally. `noloco status --db DIR` reads it to find the
// running node by itself; a file left behind by a killed node is harmless: nothing answers there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace noloco::cli {

inline constexpr const char* kStatusAddressFile = "noloco-http.json";
inline constexpr size_t kMaxStatusAddressBytes = 4096;

struct StatusAddress {
  std::string http;  // HOST:PORT of the endpoint
  int64_t pid = 0;
  std::string peer;
};

std::string status_address_path(const std::string& db);
std::string status_address_to_json(const StatusAddress& a);
// kCorrupt naming what is wrong (not JSON, `http` missing or not HOST:PORT).
Result<StatusAddress> status_address_from_json(std::string_view text);

// Reads DIR/noloco-http.json: kNotFound when there is none, kTooLarge over the cap.
Result<StatusAddress> read_status_address(const std::string& db);
Status write_status_address(const std::string& db, const StatusAddress& a);
void remove_status_address(const std::string& db);

}  // namespace noloco::cli
