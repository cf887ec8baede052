// Per-user run directories (join_dir.h).
#include "cli/join_dir.h"

#include <algorithm>
#include <system_error>

#include <nlohmann/json.hpp>

#include "p2p/secret_file.h"

namespace noloco::cli {

Result<std::filesystem::path> default_data_root(const char* xdg_data_home, const char* home) {
  if (xdg_data_home != nullptr && xdg_data_home[0] == '/') return std::filesystem::path(xdg_data_home) / "noloco";
  if (home != nullptr && home[0] == '/') return std::filesystem::path(home) / ".local" / "share" / "noloco";
  return invalid_argument("no data directory: neither XDG_DATA_HOME nor HOME is an absolute path (give --data-dir)");
}

RunDir run_dir(const std::filesystem::path& root, const std::string& run_id) { return RunDir{root / run_id}; }

Status save_join_settings(const std::filesystem::path& path, const JoinSettings& s) {
  const nlohmann::json j = {{"invite", s.invite}, {"listen", s.listen}, {"announce", s.announce}};
  return p2p::write_secret_file(path, to_bytes(j.dump(2) + "\n")).context("saving " + path.string());
}

Result<JoinSettings> load_join_settings(const std::filesystem::path& path) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes raw, p2p::read_secret_file(path, 16 * 1024));
  const auto j = nlohmann::json::parse(to_string(raw), nullptr, false);
  auto text = [&](const char* key) -> const nlohmann::json* {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return nullptr;
    return &j[key];
  };
  if (!text("invite") || !text("listen") || !text("announce"))
    return corrupt(path.string() + " is not a noloco join settings file (keys invite, listen, announce)");
  return JoinSettings{j["invite"].get<std::string>(), j["listen"].get<std::string>(),
                      j["announce"].get<std::string>()};
}

std::vector<std::string> saved_runs(const std::filesystem::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root, ec))
    if (std::filesystem::exists(run_dir(root, e.path().filename().string()).settings(), ec))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace noloco::cli
