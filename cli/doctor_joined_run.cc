#include "cli/doctor_joined_run.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "cli/invite.h"
#include "cli/join_dir.h"
#include "p2p/key_file.h"
#include "storage/store.h"

namespace noloco::cli::doctor {
namespace {

constexpr size_t kPeerBookPeers = 4;  // besides the invite's: the freshest of the peer book

// The peer book's most recently seen peers with a direct address (read-only: the node may run).
std::vector<std::string> peer_book_addrs(const std::string& db, const std::vector<std::string>& skip_ids) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(db) / "CURRENT", ec)) return out;
  storage::StoreOptions so;
  so.path = db;
  so.mode = storage::OpenMode::kReadOnly;
  auto store = storage::Store::open(so);
  if (!store.ok()) return out;
  auto peers = (*store)->list_peers();
  if (!peers.ok()) return out;
  std::sort(peers->begin(), peers->end(), [](auto& a, auto& b) { return a.last_seen_unix > b.last_seen_unix; });
  for (const auto& p : *peers) {
    if (std::find(skip_ids.begin(), skip_ids.end(), p.peer_id) != skip_ids.end()) continue;
    auto id = p2p::PeerId::parse(p.peer_id);
    if (!id.ok()) continue;
    for (const auto& text : p.addresses) {
      auto a = p2p::Multiaddr::parse(text);
      if (!a.ok() || a->is_circuit()) continue;
      out.push_back(a->with_peer_id(*id).to_string());
      break;
    }
    if (out.size() == kPeerBookPeers) break;
  }
  return out;
}

}  // namespace

JoinedRun find_joined_run(const std::string& data_dir, const std::string& run) {
  JoinedRun j;
  auto root = data_dir.empty() ? default_data_root(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"))
                               : Result<std::filesystem::path>(std::filesystem::path(data_dir));
  if (!root.ok()) {
    j.facts.error = root.status().message();
    return j;
  }
  j.facts.root = root->string();
  j.facts.runs = saved_runs(*root);
  std::string id = run;
  if (id.empty() && j.facts.runs.size() == 1) id = j.facts.runs.front();
  if (id.empty()) return j;
  const RunDir rd = run_dir(*root, id);
  auto settings = load_join_settings(rd.settings());
  if (!settings.ok()) {
    j.facts.error = "run " + id + ": " + settings.status().to_string();
    return j;
  }
  auto invite = decode_invite(settings->invite);
  if (!invite.ok()) {
    j.facts.error = rd.settings().string() + ": " + invite.status().message();
    return j;
  }
  j.facts.run_id = invite->run_id;
  j.facts.dir = rd.dir.string();
  j.facts.is_private = invite->is_private();
  j.db = rd.store().string();
  j.key = rd.key().string();
  j.settings = rd.settings().string();
  std::error_code ec;
  if (std::filesystem::exists(rd.manifest(), ec)) j.manifest = rd.manifest().string();
  j.listen = settings->listen.empty() ? "/ip4/0.0.0.0/tcp/4001" : settings->listen;  // join's default
  j.psk = invite->psk;
  std::vector<std::string> ids;
  auto self = p2p::load_key_file(rd.key());
  if (self.ok()) ids.push_back(self->peer_id().to_string());
  for (const auto& a : invite->bootstrap) {
    if (self.ok() && a.peer_id() && *a.peer_id() == self->peer_id()) continue;  // init-run's machine is in its invite
    j.peers.push_back(a.to_string());
    if (a.peer_id()) ids.push_back(a.peer_id()->to_string());
  }
  j.facts.bootstrap = j.peers.size();
  for (auto& a : peer_book_addrs(j.db, ids)) j.peers.push_back(std::move(a));
  j.facts.from_peer_book = j.peers.size() - j.facts.bootstrap;
  return j;
}

}  // namespace noloco::cli::doctor
