// Where `noloco join` keeps a run on this machine (docs/invite.md): the per-user data directory
// of the XDG Base Directory spec, one subdirectory per run, and the settings a bare `noloco join`
// resumes with.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::cli {

// $XDG_DATA_HOME/noloco when XDG_DATA_HOME is set to an absolute path (the spec says relative
// values are ignored), else $HOME/.local/share/noloco. kInvalidArgument when neither is usable.
// The environment is passed in (nullptr: unset) so the rule is testable.
Result<std::filesystem::path> default_data_root(const char* xdg_data_home, const char* home);

// Files inside <root>/<run id>/.
struct RunDir {
  std::filesystem::path dir;
  std::filesystem::path key() const { return dir / "node.key"; }          // identity, 0600
  std::filesystem::path store() const { return dir / "store"; }           // RocksDB store
  std::filesystem::path settings() const { return dir / "join.json"; }    // JoinSettings, 0600
  std::filesystem::path manifest() const { return dir / "manifest.json"; }  // only where init-run ran
};
RunDir run_dir(const std::filesystem::path& root, const std::string& run_id);

// What a bare `noloco join` needs: saved (0600, it may hold a PSK) on the first join.
struct JoinSettings {
  std::string invite;    // the invite text
  std::string listen;    // empty: join's default
  std::string announce;  // empty: derived (docs/invite.md)
};
Status save_join_settings(const std::filesystem::path& path, const JoinSettings& s);
// kNotFound when missing; kCorrupt naming the file when it is not what save_join_settings wrote.
Result<JoinSettings> load_join_settings(const std::filesystem::path& path);

// The run ids under root that have saved settings, sorted.
std::vector<std::string> saved_runs(const std::filesystem::path& root);

}  // namespace noloco::cli
