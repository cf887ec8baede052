// Helpers for the `noloco demo` part tests: a scratch folder and a FILE* whose text can be read back.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace noloco::test {

struct DemoTempDir {
  std::filesystem::path path;
  DemoTempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "noloco-demo-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~DemoTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// What a part printed: an anonymous temporary file, read back whole.
struct CapturedOutput {
  std::FILE* f = std::tmpfile();
  ~CapturedOutput() { std::fclose(f); }
  std::string text() const {
    std::fflush(f);
    std::rewind(f);
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    return s;
  }
};

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace noloco::test
