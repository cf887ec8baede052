// `noloco export`: the latest valid checkpoint's weights as a safetensors file (docs/export.md).
// Opens the store read-only, so it also works while the node is training.
#include "cli/commands.h"

#include <cstdio>
#include <fstream>
#include <memory>

#include "storage/store.h"
#include "trainer/node/safetensors_export.h"

namespace noloco::cli {

Command register_export(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "write the latest checkpoint's weights as safetensors");
  struct Flags {
    std::string db, out, format = "safetensors", weights = "phi";
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("--db", f->db, "store directory")->required();
  sub->add_option("--out", f->out, "output file")->required();
  sub->add_option("--format", f->format, "only safetensors")->capture_default_str();
  sub->add_option("--weights", f->weights, "phi (slow weights), theta (fast weights) or both")
      ->capture_default_str();

  auto run = [f]() -> int {
    auto fail = [](const std::string& m, int code) {
      std::fprintf(stderr, "noloco export: %s\n", m.c_str());
      return code;
    };
    if (f->format != "safetensors") return fail("unknown --format '" + f->format + "'", 2);
    auto which = node::parse_export_which(f->weights);
    if (!which.ok()) return fail(which.status().message(), 2);
    storage::StoreOptions so;
    so.path = f->db;
    so.mode = storage::OpenMode::kReadOnly;
    auto store = storage::Store::open(so);
    if (!store.ok()) return fail(store.status().to_string(), 1);
    auto latest = (*store)->load_latest_valid();
    if (!latest.ok()) return fail(latest.status().to_string(), 1);
    if (!*latest) return fail("the store in " + f->db + " holds no checkpoint", 1);
    auto bytes = node::safetensors_from_checkpoint((*latest)->checkpoint, *which);
    if (!bytes.ok()) return fail(bytes.status().to_string(), 1);
    const std::string tmp = f->out + ".tmp";
    {
      std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
      file.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
      if (!file.flush()) return fail("cannot write " + tmp, 1);
    }
    if (std::rename(tmp.c_str(), f->out.c_str()) != 0) return fail("cannot rename " + tmp + " to " + f->out, 1);
    std::fprintf(stdout, "wrote %s: %zu bytes, step %llu of run %s\n", f->out.c_str(), bytes->size(),
                 static_cast<unsigned long long>((*latest)->checkpoint.manifest.step),
                 (*latest)->checkpoint.manifest.run_id.c_str());
    return 0;
  };
  return Command{sub, run};
}

}  // namespace noloco::cli
