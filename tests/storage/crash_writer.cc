// Child process for the crash test: writes checkpoints (through the async writer) and metrics
// from a start step onwards until it is killed. It reports on stdout, one line each:
//   ready                   store opened
//   m <step>                metrics record for <step> written (Write() returned)
//   begin <step>            checkpoint <step> handed to the writer
//   phase <name> <step> <id>  the write of checkpoint <step> (store id <id>) entered a phase:
//                           file (data file), commit (manifest batch), reclaim (pruned files)
//   done <step>             checkpoint <step> committed
// Usage: storage_crash_writer <db path> <first step> [<phase> <step>]
// With <phase> (piece or commit) and <step>, it kills itself with SIGKILL when the write of that
// step reaches the phase ("piece": the second piece is in the data file; "commit": the data
// file is complete and synced, the manifest batch not yet written).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "crash_content.h"
#include "storage/checkpoint_writer.h"

using namespace noloco::storage;

namespace {
void say(const std::string& line) {
  std::string l = line + "\n";
  // write(2) directly: no stdio buffer to lose when we are killed.
  if (::write(1, l.data(), l.size()) < 0) std::_Exit(3);
}

const char* phase_name(CheckpointPhase p) {
  switch (p) {
    case CheckpointPhase::kWritingFile: return "file";
    case CheckpointPhase::kPieceWritten: return "piece";
    case CheckpointPhase::kCommitting: return "commit";
    case CheckpointPhase::kReclaiming: return "reclaim";
  }
  return "?";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 5) return 2;
  std::string die_phase = argc == 5 ? argv[3] : "";
  uint64_t die_step = argc == 5 ? std::strtoull(argv[4], nullptr, 10) : 0;
  StoreOptions options = test::crash_store_options(argv[1]);
  int pieces_written = 0;
  options.checkpoint_phase_hook = [&](CheckpointPhase p, uint64_t id, uint64_t step) {
    std::string name = phase_name(p);
    if (p == CheckpointPhase::kWritingFile) pieces_written = 0;
    if (p == CheckpointPhase::kPieceWritten) {
      if (++pieces_written == 2 && step == die_step && die_phase == name) ::raise(SIGKILL);
      return;  // one line per piece would flood the pipe
    }
    say("phase " + name + " " + std::to_string(step) + " " + std::to_string(id));
    if (step == die_step && die_phase == name) ::raise(SIGKILL);
  };
  auto store = Store::open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "crash_writer: %s\n", store.status().to_string().c_str());
    return 1;
  }
  say("ready");
  CheckpointWriterOptions wo;
  wo.max_queued = 1;
  wo.on_done = [](const noloco::Result<CheckpointInfo>& r) {
    if (r.ok()) say("done " + std::to_string(r->manifest.step));
    else std::_Exit(4);
  };
  CheckpointWriter writer(**store, wo);
  for (uint64_t step = std::strtoull(argv[2], nullptr, 10);; ++step) {
    if (!(*store)->put_metrics(test::crash_metrics(step)).ok()) return 5;
    say("m " + std::to_string(step));
    say("begin " + std::to_string(step));
    // Every other run of four steps as a snapshot buffer, written with O_DIRECT: kills land in
    // both kinds of write.
    Checkpoint c = test::crash_checkpoint(step);
    if ((step / 4) % 2 == 1) c = test::as_snapshot(c);
    if (!writer.submit(std::move(c)).ok()) return 6;
  }
}
