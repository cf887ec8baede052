// `noloco keygen --key FILE`: creates a node identity (Ed25519) and prints its peer id.
// Refuses to overwrite an existing file: losing a key means losing the node's identity.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "p2p/identity.h"
#include "p2p/key_file.h"

namespace noloco::cli {

Command register_keygen(CLI::App& app) {
  auto* sub = app.add_subcommand("keygen", "Create a node identity key file (refuses to overwrite)");
  auto key = std::make_shared<std::string>();
  sub->add_option("--key", *key, "Path of the key file to create")->required();
  return {sub, [key] {
            auto id = p2p::Identity::generate();
            if (!id.ok()) {
              std::fprintf(stderr, "error: %s\n", id.status().to_string().c_str());
              return 1;
            }
            Status st = p2p::write_key_file(*key, *id);
            if (!st.ok()) {
              std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
              return 1;
            }
            std::printf("%s\n", id->peer_id().to_string().c_str());
            return 0;
          }};
}

}  // namespace noloco::cli
