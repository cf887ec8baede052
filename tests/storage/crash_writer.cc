// Child process for the crash test: writes checkpoints (through the async writer) and metrics
// from a start step onwards until it is killed. It reports on stdout, one line each:
//   ready           store opened
//   m <step>        metrics record for <step> written (Write() returned)
//   begin <step>    checkpoint <step> handed to the writer
//   done <step>     checkpoint <step> committed
// Usage: storage_crash_writer <db path> <first step>
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
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  auto store = Store::open(test::crash_store_options(argv[1]));
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
    if (!writer.submit(test::crash_checkpoint(step)).ok()) return 6;
  }
}
