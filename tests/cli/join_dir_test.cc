// Per-user run directories (cli/join_dir.h) and the addresses of invites and joiners
// (cli/join_addrs.h): the environment and the machine's facts in, paths and addresses out.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cli/join_addrs.h"
#include "cli/join_dir.h"
#include "p2p/identity.h"

namespace noloco::cli {
namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "noloco-join-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("join dir: XDG_DATA_HOME when absolute, else HOME/.local/share, else a clear error", "[join]") {
  CHECK(default_data_root("/srv/xdg", "/home/ada").value() == "/srv/xdg/noloco");
  CHECK(default_data_root(nullptr, "/home/ada").value() == "/home/ada/.local/share/noloco");
  // The XDG spec: a relative (or empty) XDG_DATA_HOME is invalid and ignored.
  CHECK(default_data_root("relative/dir", "/home/ada").value() == "/home/ada/.local/share/noloco");
  CHECK(default_data_root("", "/home/ada").value() == "/home/ada/.local/share/noloco");
  auto none = default_data_root(nullptr, nullptr);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("--data-dir") != std::string::npos);
  CHECK_FALSE(default_data_root("", "not/absolute").ok());
  const RunDir rd = run_dir("/home/ada/.local/share/noloco", "46d62b01d9249932a089541279244a70");
  CHECK(rd.store() == "/home/ada/.local/share/noloco/46d62b01d9249932a089541279244a70/store");
  CHECK(rd.key().filename() == "node.key");
}

TEST_CASE("join dir: settings round trip, are private, and list the saved runs", "[join]") {
  TempDir t;
  CHECK(saved_runs(t.path).empty());
  CHECK(saved_runs(t.path / "missing").empty());
  const RunDir a = run_dir(t.path, "aaaa"), b = run_dir(t.path, "bbbb");
  std::filesystem::create_directories(a.dir);
  std::filesystem::create_directories(b.dir);
  std::filesystem::create_directories(t.path / "cccc");  // no settings: not a saved run
  REQUIRE(save_join_settings(a.settings(), {"noloco1:x", "/ip4/0.0.0.0/tcp/4001", ""}).ok());
  REQUIRE(save_join_settings(b.settings(), {"noloco1:y", "", "/ip4/10.0.0.2/tcp/4001"}).ok());
  struct stat st {};
  REQUIRE(::stat(a.settings().c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);  // it may hold a swarm key
  auto back = load_join_settings(b.settings());
  REQUIRE(back.ok());
  CHECK(back->invite == "noloco1:y");
  CHECK(back->listen.empty());
  CHECK(back->announce == "/ip4/10.0.0.2/tcp/4001");
  CHECK(saved_runs(t.path) == std::vector<std::string>{"aaaa", "bbbb"});
  CHECK(load_join_settings(t.path / "cccc" / "join.json").status().code() == StatusCode::kNotFound);
}

TEST_CASE("join addrs: the invite's bootstrap addresses", "[join]") {
  const auto self = p2p::Identity::generate().value().peer_id();
  const std::string p2p = "/p2p/" + self.to_string();
  auto one = invite_bootstrap("/ip4/127.0.0.1/tcp/4001", {}, {"10.0.0.2"}, self);
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].to_string() == "/ip4/127.0.0.1/tcp/4001" + p2p);
  auto any = invite_bootstrap("/ip4/0.0.0.0/tcp/4001", {}, {"10.0.0.2", "192.168.1.5"}, self);
  REQUIRE(any.ok());
  REQUIRE(any->size() == 2);
  CHECK((*any)[1].to_string() == "/ip4/192.168.1.5/tcp/4001" + p2p);
  auto ann = invite_bootstrap("/ip4/0.0.0.0/tcp/4001", {"/dns4/run.example.org/tcp/4001"}, {"10.0.0.2"}, self);
  REQUIRE(ann.ok());
  CHECK((*ann)[0].to_string() == "/dns4/run.example.org/tcp/4001" + p2p);
  CHECK(invite_bootstrap("/ip4/0.0.0.0/tcp/0", {}, {"10.0.0.2"}, self).status().message().find("fixed port") !=
        std::string::npos);
  CHECK(invite_bootstrap("/ip4/0.0.0.0/tcp/4001", {}, {}, self).status().message().find("--announce") !=
        std::string::npos);
  CHECK_FALSE(invite_bootstrap("/ip4/0.0.0.0/tcp/4001", {"/ip4/1.2.3.4/tcp/0"}, {}, self).ok());
}

TEST_CASE("join addrs: what a joiner announces", "[join]") {
  const auto peer = p2p::Identity::generate().value().peer_id();
  const std::vector<p2p::Multiaddr> boot = {
      p2p::Multiaddr::parse("/dns4/run.example.org/tcp/4001").value().with_peer_id(peer),
      p2p::Multiaddr::parse("/ip4/192.168.1.5/tcp/4001").value().with_peer_id(peer)};
  std::string asked;
  const RouteFn route = [&](const std::string& ip) -> Result<std::string> {
    asked = ip;
    return std::string("192.168.1.9");
  };
  CHECK(join_announce("/ip4/0.0.0.0/tcp/4001", "/ip4/5.6.7.8/tcp/9", boot, route).value() == "/ip4/5.6.7.8/tcp/9");
  CHECK(join_announce("/ip4/127.0.0.1/tcp/0", "", boot, route).value().empty());  // the bound address
  CHECK(join_announce("/ip4/0.0.0.0/tcp/4002", "", boot, route).value() == "/ip4/192.168.1.9/tcp/4002");
  CHECK(asked == "192.168.1.5");  // the DNS bootstrap is passed over, the IPv4 one asked about
  CHECK(join_announce("/ip4/0.0.0.0/tcp/0", "", boot, route).status().message().find("--announce") !=
        std::string::npos);
  const RouteFn no_route = [](const std::string&) -> Result<std::string> { return io_error("no route"); };
  CHECK(join_announce("/ip4/0.0.0.0/tcp/4002", "", boot, no_route).status().message().find("--announce") !=
        std::string::npos);
  CHECK_FALSE(join_announce("/ip4/0.0.0.0/tcp/4002", "not an address", boot, route).ok());
}

}  // namespace noloco::cli
