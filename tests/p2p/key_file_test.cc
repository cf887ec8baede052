#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "p2p/key_file.h"

using namespace noloco;
using namespace noloco::p2p;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "noloco-keyfile-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

unsigned mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write_raw(const fs::path& p, const Bytes& content, mode_t mode) {
  {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  }
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

Bytes read_raw(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("key file round-trips and is created 0600", "[key_file]") {
  TempDir dir;
  fs::path key = dir.path / "identity.key";
  auto id = Identity::generate();
  REQUIRE(id.ok());
  REQUIRE(write_key_file(key, *id).ok());
  CHECK(mode_of(key) == 0600);
  CHECK(read_raw(key) == id->private_key_protobuf());  // documented format: the PrivateKey protobuf
  auto loaded = load_key_file(key);
  REQUIRE(loaded.ok());
  CHECK(loaded->peer_id() == id->peer_id());
  // No temp files left behind.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
}

TEST_CASE("write_key_file refuses to overwrite", "[key_file]") {
  TempDir dir;
  fs::path key = dir.path / "k";
  auto a = Identity::generate();
  auto b = Identity::generate();
  REQUIRE(write_key_file(key, *a).ok());
  CHECK(write_key_file(key, *b).code() == StatusCode::kAlreadyExists);
  CHECK(load_key_file(key)->peer_id() == a->peer_id());
}

TEST_CASE("group- or world-readable key file is refused", "[key_file]") {
  TempDir dir;
  fs::path key = dir.path / "k";
  auto id = Identity::generate();
  REQUIRE(write_key_file(key, *id).ok());
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  auto r = load_key_file(key);
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(r.status().message().find("0644") != std::string::npos);
  REQUIRE(::chmod(key.c_str(), 0640) == 0);
  CHECK(load_key_file(key).status().code() == StatusCode::kPermissionDenied);
  // load_or_create must not replace it either.
  CHECK(load_or_create_key_file(key).status().code() == StatusCode::kPermissionDenied);
  CHECK(read_raw(key) == id->private_key_protobuf());
}

TEST_CASE("corrupt or truncated key file is an error, never regenerated", "[key_file]") {
  TempDir dir;
  fs::path key = dir.path / "k";
  auto id = Identity::generate();
  Bytes full = id->private_key_protobuf();

  Bytes truncated(full.begin(), full.end() - 10);
  write_raw(key, truncated, 0600);
  CHECK(load_key_file(key).status().code() == StatusCode::kCorrupt);
  CHECK(load_or_create_key_file(key).status().code() == StatusCode::kCorrupt);
  CHECK(read_raw(key) == truncated);  // untouched

  Bytes flipped = full;
  flipped[40] ^= 0x01;  // inside the seed: the public half no longer matches
  fs::remove(key);
  write_raw(key, flipped, 0600);
  CHECK(load_key_file(key).status().code() == StatusCode::kCorrupt);

  fs::remove(key);
  write_raw(key, {}, 0600);
  CHECK(load_key_file(key).status().code() == StatusCode::kCorrupt);

  fs::remove(key);
  write_raw(key, Bytes(100000, 'x'), 0600);
  CHECK(load_key_file(key).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("load_or_create creates once, then loads the same identity", "[key_file]") {
  TempDir dir;
  fs::path key = dir.path / "node.key";
  CHECK(load_key_file(key).status().code() == StatusCode::kNotFound);
  auto first = load_or_create_key_file(key);
  REQUIRE(first.ok());
  CHECK(mode_of(key) == 0600);
  auto second = load_or_create_key_file(key);
  REQUIRE(second.ok());
  CHECK(first->peer_id() == second->peer_id());
  // A directory in place of the file is not "missing".
  fs::create_directory(dir.path / "d");
  ::chmod((dir.path / "d").c_str(), 0700);
  CHECK_FALSE(load_or_create_key_file(dir.path / "d").ok());
  // A missing parent directory is an I/O error, not a silent success.
  CHECK_FALSE(load_or_create_key_file(dir.path / "no" / "such" / "k").ok());
}
