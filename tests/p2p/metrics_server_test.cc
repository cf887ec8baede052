// The `--metrics` HTTP listener (p2p/metrics_server.h) over real loopback sockets. Receives have
// a 60 s guard against hanging; no assertion depends on how fast anything happens.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "p2p/metrics_server.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {

int connect_to(const std::string& bound) {
  const auto colon = bound.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(bound.substr(colon + 1))));
  inet_pton(AF_INET, bound.substr(0, colon).c_str(), &a.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval guard{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything until the server closes (or the guard expires: then `closed` stays false).
std::string read_all(int fd, bool* closed = nullptr) {
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (closed) *closed = n == 0 || errno == ECONNRESET;
    return out;
  }
}

std::string request(int fd, const std::string& text) {
  send(fd, text.data(), text.size(), MSG_NOSIGNAL);
  return read_all(fd);
}

}  // namespace

TEST_CASE("metrics server: GET /metrics is answered with the rendered text, then closed", "[metrics_server]") {
  std::atomic<int> renders{0};
  auto srv = MetricsServer::start("127.0.0.1:0", [&] {
    ++renders;
    return std::string("noloco_x 7\n");
  });
  REQUIRE(srv.ok());
  const std::string bound = (*srv)->bound_address();
  CHECK(bound.rfind("127.0.0.1:", 0) == 0);
  for (int i = 0; i < 3; ++i) {
    const int fd = connect_to(bound);
    REQUIRE(fd >= 0);
    const std::string r = request(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    close(fd);
    CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(r.substr(r.size() - 11) == "noloco_x 7\n");
  }
  const int fd = connect_to(bound);
  CHECK(request(fd, "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
  close(fd);
  CHECK(renders == 3);
}

TEST_CASE("metrics server: a client that never finishes its request is closed at the deadline", "[metrics_server]") {
  MetricsServerOptions o;
  o.deadline = std::chrono::milliseconds(200);
  auto srv = MetricsServer::start("127.0.0.1:0", [] { return std::string("m 1\n"); }, o);
  REQUIRE(srv.ok());
  const int fd = connect_to((*srv)->bound_address());
  REQUIRE(fd >= 0);
  send(fd, "GET /metr", 9, MSG_NOSIGNAL);  // and nothing more
  bool closed = false;
  const std::string got = read_all(fd, &closed);
  close(fd);
  CHECK(closed);         // the server hung up (not our 60 s guard)
  CHECK(got.empty());    // without answering a half request
}

TEST_CASE("metrics server: connections over the cap are closed while the others are served", "[metrics_server]") {
  MetricsServerOptions o;
  o.max_connections = 2;
  o.deadline = std::chrono::seconds(120);
  auto srv = MetricsServer::start("127.0.0.1:0", [] { return std::string("m 1\n"); }, o);
  REQUIRE(srv.ok());
  const std::string bound = (*srv)->bound_address();
  const int a = connect_to(bound), b = connect_to(bound);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  // Accepted in order, so the third finds two sessions open and is closed unanswered.
  const int c = connect_to(bound);
  REQUIRE(c >= 0);
  bool closed = false;
  CHECK(read_all(c, &closed).empty());
  CHECK(closed);
  close(c);
  CHECK(request(a, "GET /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200 OK", 0) == 0);
  close(a);
  close(b);
  (*srv)->stop();  // with `b` still open on the server side until stop closes it
}

TEST_CASE("metrics server: an oversized request gets 431", "[metrics_server]") {
  MetricsServerOptions o;
  o.max_request_bytes = 1024;
  auto srv = MetricsServer::start("127.0.0.1:0", [] { return std::string("m 1\n"); }, o);
  REQUIRE(srv.ok());
  const int fd = connect_to((*srv)->bound_address());
  const std::string r = request(fd, "GET /metrics HTTP/1.1\r\nX: " + std::string(4000, 'a') + "\r\n\r\n");
  close(fd);
  CHECK(r.rfind("HTTP/1.1 431", 0) == 0);
}

TEST_CASE("metrics server: bad addresses and ports in use are errors", "[metrics_server]") {
  auto render = [] { return std::string(); };
  CHECK(MetricsServer::start("localhost:0", render).status().code() == StatusCode::kInvalidArgument);
  CHECK(MetricsServer::start("127.0.0.1", render).status().code() == StatusCode::kInvalidArgument);
  auto first = MetricsServer::start("127.0.0.1:0", render);
  REQUIRE(first.ok());
  CHECK(MetricsServer::start((*first)->bound_address(), render).status().code() == StatusCode::kIoError);
}
