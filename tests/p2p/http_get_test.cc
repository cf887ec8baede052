// http_get (p2p/http_get.h) against the --metrics listener with two routes, over real loopback
// sockets. The timeouts are guards against a hang; no assertion depends on speed.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "p2p/http_get.h"
#include "p2p/metrics_server.h"

using namespace noloco;
using namespace std::chrono_literals;

TEST_CASE("http get: /status and /metrics of one endpoint, 404 elsewhere", "[metrics_server]") {
  std::vector<metrics::HttpRoute> routes{
      {"/metrics", metrics::kExpositionContentType, [] { return std::string("m 1\n"); }},
      {"/status", "application/json", [] { return std::string("{\"state\":\"running\"}\n"); }}};
  auto srv = p2p::MetricsServer::start("127.0.0.1:0", std::move(routes));
  REQUIRE(srv.ok());
  const std::string addr = (*srv)->bound_address();
  auto s = p2p::http_get(addr, "/status", 60s);
  REQUIRE(s.ok());
  CHECK(s->status == 200);
  CHECK(s->content_type == "application/json");
  CHECK(s->body == "{\"state\":\"running\"}\n");
  auto m = p2p::http_get(addr, "/metrics", 60s);
  REQUIRE(m.ok());
  CHECK(m->body == "m 1\n");
  auto nf = p2p::http_get(addr, "/nope", 60s);
  REQUIRE(nf.ok());
  CHECK(nf->status == 404);
  // An answer over the cap is refused, not kept.
  CHECK(p2p::http_get(addr, "/status", 60s, 10).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("http get: nothing listening, a silent server and bad addresses fail clearly", "[metrics_server]") {
  // A port that was just free: connect is refused.
  std::string closed_addr;
  {
    auto srv = p2p::MetricsServer::start("127.0.0.1:0", [] { return std::string(); });
    REQUIRE(srv.ok());
    closed_addr = (*srv)->bound_address();
  }
  auto r = p2p::http_get(closed_addr, "/status", 60s);
  CHECK(r.status().code() == StatusCode::kIoError);
  CHECK(r.status().message().find(closed_addr) != std::string::npos);

  // A listener that accepts (the kernel completes the handshake) but never answers: the deadline ends it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(fd, 4) == 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto silent = p2p::http_get("127.0.0.1:" + std::to_string(ntohs(a.sin_port)), "/status", 200ms);
  CHECK(silent.status().code() == StatusCode::kIoError);
  CHECK(silent.status().message().find("no complete answer within 200 ms") != std::string::npos);
  close(fd);

  CHECK(p2p::http_get("localhost:80", "/status", 1s).status().code() == StatusCode::kInvalidArgument);
  CHECK(p2p::http_get("127.0.0.1:0", "/status", 1s).status().code() == StatusCode::kInvalidArgument);
  CHECK(p2p::http_get("nonsense", "/status", 1s).status().code() == StatusCode::kInvalidArgument);
}
