// `noloco init-run [--private] [...]`: writes a new run into the per-user data directory and prints
// its invite and the `noloco join` commands (docs/invite.md). With --out FILE it only writes the
// manifest (and, with --private FILE, a swarm key) and prints the run id (docs/node.md).
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/invite.h"
#include "cli/join_addrs.h"
#include "cli/join_dir.h"
#include "cli/p2p_flags.h"
#include "p2p/local_addrs.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "trainer/core/data.h"
#include "trainer/node/run_manifest.h"

namespace noloco::cli {

namespace {

struct InitRunFlags {
  node::RunManifest m;
  std::string out, psk_out, data_dir, listen = "/ip4/0.0.0.0/tcp/4001";
  std::vector<std::string> announce;
  bool no_data_hash = false;
};

// For a POSIX shell: inside single quotes everything is literal except the quote itself.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void print_invite(const std::string& run_id, bool is_private, const RunDir& rd, const std::string& invite,
                  const std::string& data_dir_flag) {
  const std::string here = data_dir_flag.empty() ? "" : "--data-dir " + shell_quote(data_dir_flag) + " ";
  std::printf("run %s (%s) is in %s\n\n", run_id.c_str(), is_private ? "private" : "public", rd.dir.c_str());
  std::printf("invite (whoever holds it can join the run%s):\n\n  %s\n\n", is_private ? " and holds its network key" : "",
              invite.c_str());
  std::printf("start the first node, on this machine:\n  noloco join %s%s\n", here.c_str(), shell_quote(invite).c_str());
  std::printf("on every other machine:\n  noloco join %s\n", shell_quote(invite).c_str());
  std::printf("after a stop, on any of them (no invite needed):\n  noloco join %s\n", (here + "--run " + run_id).c_str());
  std::printf("  (a bare `noloco join` resumes too while this is the only run saved on that machine)\n");
  std::fflush(stdout);
}

// The run, its first node's key and its invite in <data dir>/<run id>/; prints the invite.
int write_invited_run(const InitRunFlags& f, const node::RunManifest& m) {
  auto root = f.data_dir.empty() ? default_data_root(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"))
                                 : Result<std::filesystem::path>(std::filesystem::path(f.data_dir));
  if (!root.ok()) return fail(root.status());
  const std::string run_id = node::run_id_of(m);
  const RunDir rd = run_dir(*root, run_id);
  if (auto saved = load_join_settings(rd.settings()); saved.ok()) {
    std::fprintf(stderr, "noloco init-run: this run was initialised before; its invite again:\n");
    print_invite(run_id, m.private_network, rd, saved->invite, f.data_dir);
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(rd.dir, ec);
  if (ec) return fail(io_error("cannot create " + rd.dir.string() + ": " + ec.message()));
  ::chmod(rd.dir.c_str(), 0700);
  if (Status st = node::write_manifest_file(rd.manifest(), m); !st.ok()) return fail(st);
  auto id = p2p::load_or_create_key_file(rd.key());
  if (!id.ok()) return fail(id.status().context(rd.key().string()));
  Invite inv;
  inv.run_id = run_id;
  auto boot = invite_bootstrap(f.listen, f.announce, p2p::local_ipv4_addresses(), id->peer_id());
  if (!boot.ok()) return fail(boot.status());
  inv.bootstrap = *boot;
  if (m.private_network) {
    auto psk = p2p::generate_psk();
    if (!psk.ok()) return fail(psk.status());
    inv.psk = *psk;
  }
  auto text = encode_invite(inv);
  if (!text.ok()) return fail(text.status());
  const JoinSettings s{*text, f.listen, inv.bootstrap.front().without_peer_id().to_string()};
  if (Status st = save_join_settings(rd.settings(), s); !st.ok()) return fail(st);
  print_invite(run_id, m.private_network, rd, *text, f.data_dir);
  return 0;
}

}  // namespace

Command register_init_run(CLI::App& app) {
  auto* sub = app.add_subcommand("init-run", "write a run manifest (and a PSK for a private run)");
  auto f = std::make_shared<InitRunFlags>();
  auto& m = f->m;
  sub->add_option("--out", f->out, "only write the manifest to this file and print the run id (no invite)");
  sub->add_option("--name", m.name, "a label for people")->capture_default_str();
  sub->add_option("--preset", m.preset, "model preset: tiny | small | medium | gpt-125m")->capture_default_str();
  sub->add_option("--steps", m.steps, "inner steps of the run")->capture_default_str();
  sub->add_option("--H", m.H, "inner steps per outer step")->capture_default_str();
  sub->add_option("--method", m.method, "noloco (random pairs) | diloco (all-reduce baseline)")
      ->capture_default_str();
  // DiLoCo's α defaults to the paper's heavy-ball baseline (docs/algorithm.md §3), NoLoCo's to 0.5.
  auto* alpha = sub->add_option("--alpha", m.alpha, "outer momentum (diloco: default 0.3)")
                    ->capture_default_str();
  sub->add_option("--beta", m.beta, "outer step on the mean pseudo-gradient")->capture_default_str();
  sub->add_option("--gamma", m.gamma, "pull toward the group's mean slow weights")->capture_default_str();
  sub->add_option("--lr", m.lr, "peak inner learning rate")->capture_default_str();
  sub->add_option("--warmup", m.warmup, "warm-up steps")->capture_default_str();
  sub->add_option("--batch", m.batch, "sequences per inner step per node")->capture_default_str();
  // DiLoCo's all-reduce uses the codec too (docs/protocols/allreduce.md); its default stays fp32.
  auto* codec = sub->add_option("--codec", m.codec, "wire codec: fp32 | bf16 | int8 | int4 (diloco: default fp32)")
                    ->capture_default_str();
  sub->add_option("--zstd", m.zstd, "zstd after the codec (true/false)")->capture_default_str();
  sub->add_option("--wire-form", m.wire_form, "delta_phi, or theta (only when gamma == beta)")->capture_default_str();
  sub->add_option("--data", m.data, "corpus path (its sha256 goes into the manifest)")->capture_default_str();
  sub->add_flag("--no-data-hash", f->no_data_hash, "do not pin the corpus by hash");
  sub->add_option("--seed", m.seed, "init seed")->capture_default_str();
  auto* priv = sub->add_option("--private", f->psk_out,
                               "make the run private (a PSK network); with --out, write the swarm key to this file")
                   ->expected(0, 1);
  sub->add_option("--data-dir", f->data_dir, "where runs are kept (default: $XDG_DATA_HOME/noloco, ~/.local/share/noloco)");
  sub->add_option("--listen", f->listen, "where the first node listens (a fixed port)")->capture_default_str();
  sub->add_option("--announce", f->announce,
                  "address other machines dial, repeatable (default: --listen, or for 0.0.0.0 this machine's IPs)");

  return {sub, [f, alpha, codec, priv] {
            node::RunManifest m = f->m;
            if (m.method == "diloco" && alpha->count() == 0) m.alpha = 0.3;
            if (m.method == "diloco" && codec->count() == 0) m.codec = "fp32";
            if (!f->no_data_hash) {
              auto corpus = trainer::load_corpus(m.data);
              if (!corpus.ok()) return fail(corpus.status().context("--data"));
              m.data_sha256 = hex_encode(sha256(*corpus));
            }
            m.private_network = priv->count() > 0;
            if (Status st = m.validate(); !st.ok()) return fail(st);
            if (f->out.empty()) return write_invited_run(*f, m);
            if (m.private_network && f->psk_out.empty()) return fail(invalid_argument("with --out, give --private FILE"));
            if (m.private_network) {
              auto psk = p2p::generate_psk();
              if (!psk.ok()) return fail(psk.status());
              if (Status st = p2p::write_swarm_key_file(f->psk_out, *psk); !st.ok()) return fail(st);
            }
            if (Status st = node::write_manifest_file(f->out, m); !st.ok()) return fail(st);
            std::printf("%s\n", node::run_id_of(m).c_str());
            std::fflush(stdout);
            return 0;
          }};
}

}  // namespace noloco::cli
