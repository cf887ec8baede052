// Shared by the p2p verbs: turn --key / --psk flags into an identity and host options.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "common/status.h"
#include "p2p/host_options.h"
#include "p2p/identity.h"
#include "p2p/key_file.h"
#include "p2p/pnet.h"

namespace noloco::cli {

// --key FILE when given (the file must exist and be valid), else a fresh ephemeral identity.
inline Result<p2p::Identity> identity_from_flag(const std::string& key_path) {
  if (key_path.empty()) return p2p::Identity::generate();
  return p2p::load_key_file(key_path);
}

inline Status apply_psk_flag(const std::string& psk_path, p2p::HostOptions& opt) {
  if (psk_path.empty()) return Status::Ok();
  auto psk = p2p::load_swarm_key_file(psk_path);
  if (!psk.ok()) return psk.status().context("--psk " + psk_path);
  opt.psk = *psk;
  return Status::Ok();
}

inline int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
  return 1;
}

}  // namespace noloco::cli
