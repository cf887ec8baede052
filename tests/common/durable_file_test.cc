#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/durable_file.h"
#include "common/errno_text.h"

using namespace noloco;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "noloco-durable-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  // Every name in the directory, so a leftover temporary file shows up.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("write_file_durably writes the content with exactly the mode asked for", "[durable_file]") {
  ScratchDir d;
  const mode_t old_umask = ::umask(077);  // would narrow 0644 to 0600 if the helper relied on open()'s mode
  REQUIRE(write_file_durably(d.path / "secret", as_bytes("key bytes"), {.mode = 0600}).ok());
  REQUIRE(write_file_durably(d.path / "shared", as_bytes("chart"), {.mode = 0644}).ok());
  ::umask(old_umask);
  CHECK(read_all(d.path / "secret") == "key bytes");
  CHECK(mode_of(d.path / "secret") == 0600);
  CHECK(read_all(d.path / "shared") == "chart");
  CHECK(mode_of(d.path / "shared") == 0644);
  CHECK(d.names() == std::vector<std::string>{"secret", "shared"});
}

TEST_CASE("write_file_durably replaces an existing file whole", "[durable_file]") {
  ScratchDir d;
  REQUIRE(write_file_durably(d.path / "f", as_bytes(std::string(10000, 'a')), {}).ok());
  REQUIRE(write_file_durably(d.path / "f", as_bytes("short"), {}).ok());
  CHECK(read_all(d.path / "f") == "short");
  CHECK(d.names() == std::vector<std::string>{"f"});
}

TEST_CASE("a write that fails midway leaves the old file intact and no temporary file", "[durable_file]") {
  ScratchDir d;
  REQUIRE(write_file_durably(d.path / "f", as_bytes("old content"), {}).ok());
  Status s = write_file_durably(d.path / "f", {}, [](DurableSink& sink) {
    NOLOCO_RETURN_IF_ERROR(sink.write(as_bytes("half of the new")));
    return io_error("the producer gave up");
  });
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(s.message() == "the producer gave up");
  CHECK(read_all(d.path / "f") == "old content");
  CHECK(d.names() == std::vector<std::string>{"f"});
}

TEST_CASE("a write that cannot publish leaves the old entry intact and no temporary file", "[durable_file]") {
  ScratchDir d;
  // A non-empty directory at the path: rename(2) onto it fails.
  fs::create_directory(d.path / "taken");
  { std::ofstream(d.path / "taken" / "inside") << "x"; }
  Status s = write_file_durably(d.path / "taken", as_bytes("new"), {});
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(s.message().find("renaming") != std::string::npos);
  CHECK(fs::is_directory(d.path / "taken"));
  CHECK(read_all(d.path / "taken" / "inside") == "x");
  CHECK(d.names() == std::vector<std::string>{"taken"});
}

TEST_CASE("Existing::kKeep never replaces a file", "[durable_file]") {
  ScratchDir d;
  const DurableFileOptions keep{.mode = 0600, .existing = Existing::kKeep};
  REQUIRE(write_file_durably(d.path / "key", as_bytes("first"), keep).ok());
  Status s = write_file_durably(d.path / "key", as_bytes("second"), keep);
  CHECK(s.code() == StatusCode::kAlreadyExists);
  CHECK(read_all(d.path / "key") == "first");
  CHECK(d.names() == std::vector<std::string>{"key"});
}

TEST_CASE("write_file_durably names the path when its directory is missing", "[durable_file]") {
  ScratchDir d;
  Status s = write_file_durably(d.path / "no" / "f", as_bytes("x"), {});
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(s.message().find((d.path / "no" / "f").string()) != std::string::npos);
  CHECK(s.message().find(errno_text(ENOENT)) != std::string::npos);
}

TEST_CASE("errno_text gives the system's words for an errno value", "[durable_file]") {
  CHECK(errno_text(ENOENT) == "No such file or directory");
  CHECK(errno_text(EACCES) == "Permission denied");
}
