// `noloco export`: the latest valid checkpoint's weights as a safetensors file (docs/export.md).
// Opens the store read-only, so it also works while the node is training.
#include "cli/commands.h"

#include <cstdio>
#include <memory>

#include "storage/store.h"
#include "trainer/node/export.h"

namespace noloco::cli {

Command register_export(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "write the latest checkpoint's slow weights as safetensors");
  struct Flags {
    std::string db, out, format = "safetensors", weights = "phi";
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("--db", f->db, "store directory")->required();
  sub->add_option("--out", f->out, "output file")->required();
  sub->add_option("--format", f->format, "output format (only safetensors)")->capture_default_str();
  sub->add_option("--weights", f->weights, "phi (slow weights), theta (fast weights) or both")
      ->capture_default_str();
  sub->add_flag("--force", f->force, "replace --out if it exists");

  auto run = [f]() -> int {
    auto fail = [](const std::string& m, int code) {
      std::fprintf(stderr, "noloco export: %s\n", m.c_str());
      return code;
    };
    if (f->format != "safetensors") return fail("unknown --format '" + f->format + "' (only safetensors)", 2);
    auto which = node::parse_export_which(f->weights);
    if (!which.ok()) return fail(which.status().message(), 2);

    storage::StoreOptions so;
    so.path = f->db;
    so.mode = storage::OpenMode::kReadOnly;
    auto store = storage::Store::open(so);
    if (!store.ok()) return fail(store.status().to_string(), 1);
    auto latest = (*store)->load_latest_valid();
    if (!latest.ok()) return fail(latest.status().to_string(), 1);
    const std::optional<storage::LoadedCheckpoint>& loaded = *latest;
    if (!loaded) return fail("the store in " + f->db + " holds no checkpoint yet", 1);
    for (const auto& why : loaded->skipped)
      std::fprintf(stderr, "noloco export: passed over a newer checkpoint: %s\n", why.c_str());

    const storage::Checkpoint& cp = loaded->checkpoint;
    auto written = node::write_safetensors_file(cp, *which, f->out, f->force);
    if (!written.ok()) return fail(written.status().to_string(), 1);
    std::fprintf(stdout, "wrote %s: %llu bytes, %s of checkpoint %llu (step %llu) of run %s\n", f->out.c_str(),
                 static_cast<unsigned long long>(*written), f->weights.c_str(),
                 static_cast<unsigned long long>(loaded->id), static_cast<unsigned long long>(cp.manifest.step),
                 cp.manifest.run_id.c_str());
    return 0;
  };
  return Command{sub, run};
}

}  // namespace noloco::cli
