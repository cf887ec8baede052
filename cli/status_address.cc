// The address file (status_address.h).
#include "cli/status_address.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/metrics_http.h"

namespace noloco::cli {

std::string status_address_path(const std::string& db) {
  return (std::filesystem::path(db) / kStatusAddressFile).string();
}

std::string status_address_to_json(const StatusAddress& a) {
  return nlohmann::ordered_json{{"http", a.http}, {"pid", a.pid}, {"peer", a.peer}}.dump() + "\n";
}

Result<StatusAddress> status_address_from_json(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  if (!j.contains("http") || !j["http"].is_string()) return corrupt("no \"http\" address");
  StatusAddress a;
  a.http = j["http"].get<std::string>();
  if (auto parsed = metrics::parse_listen_address(a.http); !parsed.ok()) return corrupt(parsed.status().message());
  if (j.contains("pid") && j["pid"].is_number_integer()) a.pid = j["pid"].get<int64_t>();
  if (j.contains("peer") && j["peer"].is_string()) a.peer = j["peer"].get<std::string>();
  return a;
}

Result<StatusAddress> read_status_address(const std::string& db) {
  const std::string path = status_address_path(db);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found("no " + path);
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return io_error(path + ": " + ec.message());
  if (size > kMaxStatusAddressBytes) return too_large(path + ": over " + std::to_string(kMaxStatusAddressBytes) + " bytes");
  std::ifstream f(path, std::ios::binary);
  if (!f) return io_error("cannot read " + path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto a = status_address_from_json(text);
  if (!a.ok()) return a.status().context(path);
  return a;
}

Status write_status_address(const std::string& db, const StatusAddress& a) {
  const std::string text = status_address_to_json(a);
  return write_file_durably(status_address_path(db), to_bytes(text), DurableFileOptions{});
}

void remove_status_address(const std::string& db) {
  std::error_code ignored;
  std::filesystem::remove(status_address_path(db), ignored);
}

}  // namespace noloco::cli
