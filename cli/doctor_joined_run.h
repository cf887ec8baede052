// `noloco doctor` inside a run kept by `noloco join` (docs/invite.md, docs/doctor.md): the files
// of <data dir>/<run id>/ as the inputs of the checks, so a joiner needs no flags.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/doctor_checks.h"
#include "p2p/pnet.h"

namespace noloco::cli::doctor {

struct JoinedRun {
  JoinedRunFacts facts;            // for check_joined_run; facts.run_id empty: none used
  std::string db, key, settings;   // store/, node.key, join.json
  std::string manifest;            // manifest.json where init-run ran, else empty
  std::string listen;              // what `noloco join` listens on (saved, or its default)
  std::optional<p2p::Psk> psk;     // a private run's, from the invite
  std::vector<std::string> peers;  // the invite's bootstrap (minus ourselves), then the peer book's freshest
};

// `data_dir` empty: join's default root; `run` empty: the only saved run. Never fails: what went
// wrong is in facts.error (or facts.runs lists the choices).
JoinedRun find_joined_run(const std::string& data_dir, const std::string& run);

}  // namespace noloco::cli::doctor
