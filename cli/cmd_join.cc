// `noloco join [INVITE]`: the one command of every machine of a run (docs/invite.md). The first
// time it keeps the invite, a new identity key and the store in the per-user data directory; every
// later time (a bare `noloco join`, or the same command again) it resumes from there.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/invite.h"
#include "cli/join_addrs.h"
#include "cli/join_dir.h"
#include "cli/node_command.h"
#include "cli/p2p_flags.h"
#include "p2p/local_addrs.h"
#include "trainer/node/device_choice.h"

namespace noloco::cli {
namespace {

struct JoinFlags {
  std::string invite, data_dir, run, listen, announce, device = "auto", metrics;
  bool json = false;
  node::NodeOptions node;
};

Result<std::filesystem::path> data_root(const JoinFlags& f) {
  if (!f.data_dir.empty()) return std::filesystem::path(f.data_dir);
  return default_data_root(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"));
}

// The invite of this start: the one given (saved on first use), or the saved one of --run, or of
// the only run saved on this machine.
Result<JoinSettings> settings_for(const JoinFlags& f, const std::filesystem::path& root) {
  std::string run = f.run;
  if (!f.invite.empty()) {
    NOLOCO_ASSIGN_OR_RETURN(Invite inv, decode_invite(f.invite));
    const RunDir rd = run_dir(root, inv.run_id);
    auto saved = load_join_settings(rd.settings());
    if (saved.ok()) {
      saved->invite = f.invite;  // this start dials the bootstrap peers given now
      return *saved;
    }
    if (saved.status().code() != StatusCode::kNotFound) return saved.status();
    std::error_code ec;
    std::filesystem::create_directories(rd.dir, ec);
    if (ec) return io_error("cannot create " + rd.dir.string() + ": " + ec.message());
    ::chmod(rd.dir.c_str(), 0700);  // the key, the settings (perhaps a PSK) and the store are ours alone
    return JoinSettings{f.invite, f.listen, f.announce};  // saved once the node's options are good
  }
  if (run.empty()) {
    const auto runs = saved_runs(root);
    if (runs.empty())
      return invalid_argument("no run saved under " + root.string() + ": give the invite, noloco join 'noloco1:...'");
    if (runs.size() > 1) {
      std::string list;
      for (const auto& r : runs) list += " " + r;
      return invalid_argument("several runs are saved under " + root.string() + ":" + list + "; say which with --run ID");
    }
    run = runs.front();
  }
  if (run.size() != 32 || run.find_first_not_of("0123456789abcdef") != std::string::npos)
    return invalid_argument("--run '" + run + "': a run id is 32 lowercase hex digits");
  return load_join_settings(run_dir(root, run).settings());
}

// NodeOptions from the invite and the saved settings (flags given now win).
Status fill_node_options(JoinFlags& f, const JoinSettings& s, const std::filesystem::path& root) {
  NOLOCO_ASSIGN_OR_RETURN(Invite inv, decode_invite(s.invite));
  const RunDir rd = run_dir(root, inv.run_id);
  node::NodeOptions& o = f.node;
  auto id = p2p::load_or_create_key_file(rd.key());
  if (!id.ok()) return id.status().context("identity key " + rd.key().string());
  o.identity = *id;
  o.db = rd.store().string();
  o.run_id = inv.run_id;
  o.host.psk = inv.psk;
  std::error_code ec;
  if (std::filesystem::exists(rd.manifest(), ec)) o.manifest_path = rd.manifest().string();  // init-run's machine
  std::vector<p2p::Multiaddr> others;
  for (const auto& a : inv.bootstrap)
    if (*a.peer_id() != id->peer_id()) {
      others.push_back(a);
      o.join.push_back(a.to_string());
    }
  o.listen = !f.listen.empty() ? f.listen : !s.listen.empty() ? s.listen : "/ip4/0.0.0.0/tcp/4001";
  const std::string announce = !f.announce.empty() ? f.announce : s.announce;
  NOLOCO_ASSIGN_OR_RETURN(o.announce, join_announce(o.listen, announce, others, p2p::local_ipv4_towards));
  NOLOCO_ASSIGN_OR_RETURN(o.device, node::choose_device(f.device, node::probe_device_facts()));
  std::fprintf(stderr, "noloco join: run %s%s, data in %s, device %s\n", inv.run_id.c_str(),
               inv.is_private() ? " (private)" : "", rd.dir.c_str(), o.device.c_str());
  return Status::Ok();
}

// Exit code 2 for what the user can fix (a bad invite or flag), as `noloco run` does; else 1.
int refuse(const Status& st) {
  std::fprintf(stderr, "noloco join: %s\n", st.to_string().c_str());
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

Command register_join(CLI::App& app) {
  auto* sub = app.add_subcommand("join", "join a run with its invite; run again (no arguments) to resume");
  auto f = std::make_shared<JoinFlags>();
  sub->add_option("invite", f->invite, "the invite `noloco init-run` printed (only the first time)");
  sub->add_option("--data-dir", f->data_dir, "where runs are kept (default: $XDG_DATA_HOME/noloco, ~/.local/share/noloco)");
  sub->add_option("--run", f->run, "resume this run id (when several are saved here)");
  sub->add_option("--listen", f->listen, "multiaddr to listen on (default /ip4/0.0.0.0/tcp/4001; saved on first join)");
  sub->add_option("--announce", f->announce, "multiaddr peers should dial (default: derived; saved on first join)");
  sub->add_option("--device", f->device, "auto (cuda when available, else cpu), cpu or cuda")->capture_default_str();
  sub->add_option("--data", f->node.data, "corpus path (default: the manifest's; its sha256 must match)");
  add_node_tuning_flags(sub, f->node, f->json, f->metrics);
  return {sub, [f] {
            auto root = data_root(*f);
            if (!root.ok()) return refuse(root.status());
            auto settings = settings_for(*f, *root);
            if (!settings.ok()) return refuse(settings.status());
            if (Status st = fill_node_options(*f, *settings, *root); !st.ok()) return refuse(st);
            // First join: keep the settings for the bare `noloco join` of every later start.
            const auto path = run_dir(*root, f->node.run_id).settings();
            if (!std::filesystem::exists(path))
              if (Status st = save_join_settings(path, *settings); !st.ok()) return refuse(st);
            return run_node_command("join", f->node, f->json, f->metrics);
          }};
}

}  // namespace noloco::cli
