// `noloco id --key FILE`: prints the peer id of an identity key file.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "p2p/key_file.h"

namespace noloco::cli {

Command register_id(CLI::App& app) {
  auto* sub = app.add_subcommand("id", "Print the peer id of a key file");
  auto key = std::make_shared<std::string>();
  sub->add_option("--key", *key, "Identity key file")->required();
  return {sub, [key] {
            auto id = p2p::load_key_file(*key);
            if (!id.ok()) {
              std::fprintf(stderr, "error: %s\n", id.status().to_string().c_str());
              return 1;
            }
            std::printf("%s\n", id->peer_id().to_string().c_str());
            return 0;
          }};
}

}  // namespace noloco::cli
