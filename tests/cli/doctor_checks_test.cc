// The rules of `noloco doctor` (cli/doctor_checks.h): facts in, verdict lines out.
#include <catch2/catch.hpp>

#include "cli/doctor_checks.h"

using namespace noloco::cli::doctor;

namespace {
bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }
constexpr uint64_t MiB = 1ull << 20;
}  // namespace

TEST_CASE("doctor: disk needs keep_last plus one checkpoints and the store floor", "[doctor]") {
  DiskFacts d;
  d.path = "/data";
  d.checkpoint_bytes = 100 * MiB;
  d.size_source = "preset x";
  d.keep_last = 3;
  d.min_free_to_open = 16 * MiB;
  const uint64_t need = 4 * 100 * MiB + 16 * MiB;
  d.free_bytes = need - 1;
  Verdict v = check_disk(d);
  CHECK(v.level == Level::kFail);
  CHECK(has(v.what, "3+1 checkpoints of 100.0 MiB"));
  CHECK(has(v.fix, "lower --keep-last"));
  d.free_bytes = need;
  CHECK(check_disk(d).level == Level::kWarn);
  d.free_bytes = 2 * need;
  v = check_disk(d);
  CHECK(v.level == Level::kOk);
  CHECK(v.fix.empty());
  d.keep_last = 10;  // the same free space, more kept: no longer enough
  CHECK(check_disk(d).level == Level::kFail);
}

TEST_CASE("doctor: disk without a known checkpoint size only checks the floor", "[doctor]") {
  DiskFacts d;
  d.path = "/data";
  d.min_free_to_open = 16 * MiB;
  d.free_bytes = 15 * MiB;
  CHECK(check_disk(d).level == Level::kFail);
  d.free_bytes = 1000 * MiB;
  const Verdict v = check_disk(d);
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.fix, "--manifest"));
}

TEST_CASE("doctor: checkpoint size is five fp32 copies of the parameters plus a margin", "[doctor]") {
  CHECK(checkpoint_bytes_for(1000) == 20000 + 65536);
  CHECK(checkpoint_bytes_for(-5) == 65536);
}

TEST_CASE("doctor: key and psk files must be owner-only", "[doctor]") {
  SecretFileFacts f{"key", "/k", true, true, true, 0600};
  CHECK(check_secret_file(f).level == Level::kOk);
  f.mode = 0400;
  CHECK(check_secret_file(f).level == Level::kOk);
  f.mode = 0640;
  Verdict v = check_secret_file(f);
  CHECK(v.level == Level::kFail);
  CHECK(has(v.what, "mode 0640"));
  CHECK(v.fix == "chmod 600 /k");
  f.mode = 0602;
  CHECK(check_secret_file(f).level == Level::kFail);
  f.regular = false;
  f.mode = 0600;
  CHECK(check_secret_file(f).level == Level::kFail);
  // A key that does not exist yet is created 0600 by noloco run; a missing PSK is an error.
  CHECK(check_secret_file({"key", "/k", true, false, false, 0}).level == Level::kOk);
  CHECK(check_secret_file({"psk", "/p", true, false, false, 0}).level == Level::kFail);
  CHECK(check_secret_file({"psk", "", false, false, false, 0}).level == Level::kSkip);
}

TEST_CASE("doctor: device fails with its error and warns when very slow", "[doctor]") {
  DeviceFacts d{"cuda", "Unsupported: CUDA is not available", 0, 0, 0};
  Verdict v = check_device(d);
  CHECK(v.level == Level::kFail);
  CHECK(has(v.what, "CUDA is not available"));
  CHECK(has(v.fix, "--device cpu"));
  v = check_device({"cpu", "", 42.5, 512, 2});
  CHECK(v.level == Level::kOk);
  CHECK(v.what == "cpu: 42.5 GFLOP/s fp32 matmul (n=512, torch threads 2)");
  CHECK(check_device({"cpu", "", 0.5, 512, 1}).level == Level::kWarn);
}

TEST_CASE("doctor: the BLAS is read from the process's mapped libraries", "[doctor]") {
  const std::string maps =
      "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13\n"
      "7f02-7f03 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3\n"
      "7f04-7f05 r--p 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3\n"
      "7f06-7f07 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libopenblas.so.0\n"
      "7f08-7f09 rw-p 00000000 00:00 0 [heap]\n";
  const auto libs = blas_libraries(maps);
  REQUIRE(libs.size() == 2);
  CHECK(libs[0] == "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
  Verdict v = check_blas(libs, "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "OpenBLAS"));

  v = check_blas({"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"}, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3");
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.what, "reference BLAS"));
  CHECK(has(v.fix, "update-alternatives"));
  CHECK(check_blas({}, "").level == Level::kWarn);
  CHECK(check_blas({"/opt/intel/libmkl_rt.so.2"}, "").level == Level::kOk);
}

TEST_CASE("doctor: OMP_WAIT_POLICY unset or passive is right, anything else warns", "[doctor]") {
  CHECK(check_openmp(std::nullopt).level == Level::kOk);
  CHECK(check_openmp(std::string("passive")).level == Level::kOk);
  const Verdict v = check_openmp(std::string("ACTIVE"));
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.fix, "unset OMP_WAIT_POLICY"));
}

TEST_CASE("doctor: OPENBLAS_THREAD_TIMEOUT unset or at most 4 is right, a spinning value or garbage warns", "[doctor]") {
  CHECK(check_openblas_timeout(std::nullopt).level == Level::kOk);
  CHECK(check_openblas_timeout(std::string("4")).level == Level::kOk);
  CHECK(check_openblas_timeout(std::string("28")).level == Level::kWarn);
  const Verdict v = check_openblas_timeout(std::string("four"));
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.fix, "OPENBLAS_THREAD_TIMEOUT=4"));
}

TEST_CASE("doctor: manifest errors fail, a missing corpus fails, no manifest skips", "[doctor]") {
  ManifestFacts m;
  CHECK(check_manifest(m).level == Level::kSkip);
  m.given = true;
  m.path = "run.json";
  m.error = "InvalidArgument: run.json: H must be positive";
  Verdict v = check_manifest(m);
  CHECK(v.level == Level::kFail);
  CHECK(has(v.what, "H must be positive"));
  m.error.clear();
  m.run_id = "abc";
  m.preset = "tiny";
  m.method = "noloco";
  m.parameters = 1000;
  m.H = 20;
  m.data = "/corpus";
  m.data_exists = true;
  v = check_manifest(m);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "run abc, noloco, preset tiny (1000 parameters), H 20; corpus /corpus present"));
  m.data_exists = false;
  v = check_manifest(m);
  CHECK(v.level == Level::kFail);
  CHECK(has(v.fix, "--data"));
}

TEST_CASE("doctor: a joiner's manifest line names the invite's run id, never --run-id", "[doctor]") {
  ManifestFacts m;
  m.joined_run_id = "0123456789abcdef0123456789abcdef";
  const Verdict v = check_manifest(m);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "joined run 0123456789abcdef0123456789abcdef"));
  CHECK(!has(v.what, "--run-id"));
  CHECK(has(check_manifest(ManifestFacts{}).what, "--run-id"));
}

TEST_CASE("doctor: a joined private run's PSK is checked in join.json, a public run needs none", "[doctor]") {
  SecretFileFacts f{"psk", "/d/run/join.json", true, true, true, 0600};
  f.in_invite = true;
  Verdict v = check_secret_file(f);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "the PSK is in the invite saved in /d/run/join.json has mode 0600"));
  f.mode = 0644;
  v = check_secret_file(f);
  CHECK(v.level == Level::kFail);
  CHECK(v.fix == "chmod 600 /d/run/join.json");
  SecretFileFacts pub{"psk", "", false, false, false, 0};
  pub.joined_public = true;
  v = check_secret_file(pub);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "a public run"));
  CHECK(!has(v.what, "--psk"));
}

TEST_CASE("doctor: the joined run line says which run, or why none", "[doctor]") {
  JoinedRunFacts f;
  f.root = "/home/u/.local/share/noloco";
  Verdict v = check_joined_run(f);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "no run saved under /home/u/.local/share/noloco"));
  f.runs = {"aa", "bb"};
  v = check_joined_run(f);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "several runs are saved under /home/u/.local/share/noloco: aa bb"));
  CHECK(has(v.fix, "--run ID"));
  f.run_id = "aa";
  f.dir = f.root + "/aa";
  f.is_private = true;
  f.bootstrap = 2;
  f.from_peer_book = 3;
  v = check_joined_run(f);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "run aa (private) in /home/u/.local/share/noloco/aa"));
  CHECK(has(v.what, "2 from the invite, 3 from the peer book"));
  f.error = "run aa: join.json is damaged";
  CHECK(check_joined_run(f).level == Level::kFail);
}

TEST_CASE("doctor: peers, the skipped checks, lines and the exit code", "[doctor]") {
  Verdict ok = check_peer({"/ip4/127.0.0.1/tcp/1/p2p/X", "", 0.5, "noloco/0.1", "/ip4/127.0.0.1/tcp/5"});
  CHECK(ok.level == Level::kOk);
  CHECK(has(ok.what, "reachable, ping 0.50 ms"));
  CHECK(has(ok.what, "sees this machine as /ip4/127.0.0.1/tcp/5"));
  Verdict bad = check_peer({"/ip4/127.0.0.1/tcp/1/p2p/X", "unreachable: connection refused", 0, "", ""});
  CHECK(bad.level == Level::kFail);
  CHECK(no_peers_given().level == Level::kSkip);

  const std::vector<Verdict> skipped = {no_peers_given()};
  CHECK(verdict_line(bad).rfind("fail  peer          /ip4/", 0) == 0);
  CHECK(has(verdict_line(bad), "; fix: check the address"));
  CHECK(verdict_line(ok).find("fix:") == std::string::npos);
  CHECK(exit_code({ok, skipped[0], no_peers_given()}) == 0);
  CHECK(exit_code({ok, check_openmp(std::string("ACTIVE"))}) == 0);  // a warning is not a failure
  CHECK(exit_code({ok, bad}) == 1);
}
