// `noloco init-run --out FILE [...]`: writes a run manifest (and, with --private, a swarm key
// for a private network) and prints the run id that peers join with (docs/node.md).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/p2p_flags.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "trainer/core/data.h"
#include "trainer/node/run_manifest.h"

namespace noloco::cli {

Command register_init_run(CLI::App& app) {
  auto* sub = app.add_subcommand("init-run", "write a run manifest (and a PSK for a private run)");
  struct Flags {
    node::RunManifest m;
    std::string out, psk_out;
    bool no_data_hash = false;
  };
  auto f = std::make_shared<Flags>();
  auto& m = f->m;
  sub->add_option("--out", f->out, "manifest file to write")->required();
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
  sub->add_option("--private", f->psk_out, "make the run private and write its swarm key to this file");

  return {sub, [f, alpha, codec] {
            node::RunManifest m = f->m;
            if (m.method == "diloco" && alpha->count() == 0) m.alpha = 0.3;
            if (m.method == "diloco" && codec->count() == 0) m.codec = "fp32";
            if (!f->no_data_hash) {
              auto corpus = trainer::load_corpus(m.data);
              if (!corpus.ok()) return fail(corpus.status().context("--data"));
              m.data_sha256 = hex_encode(sha256(*corpus));
            }
            m.private_network = !f->psk_out.empty();
            if (Status st = m.validate(); !st.ok()) return fail(st);
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
