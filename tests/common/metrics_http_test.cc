// The sans-IO HTTP side of `--metrics` (common/metrics_http.h).
#include <catch2/catch.hpp>

#include <string>

#include "common/metrics_http.h"

using namespace noloco;
using namespace noloco::metrics;
using State = HttpRequestParser::State;

namespace {

std::string answer(const std::string& request, size_t cap = 8192) {
  HttpRequestParser p(cap);
  p.feed(request);
  return respond(p, [] { return std::string("m 1\n"); });
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

}  // namespace

TEST_CASE("metrics http: GET /metrics as Prometheus sends it gets 200 with the exposition", "[metrics_http]") {
  const std::string req =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.42.0\r\n"
      "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
      "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 1\r\n\r\n";
  const std::string r = answer(req);
  CHECK(status_line(r) == "HTTP/1.1 200 OK");
  CHECK(r.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(r.find("Content-Length: 4\r\n") != std::string::npos);
  CHECK(r.find("Connection: close\r\n") != std::string::npos);
  CHECK(r.substr(r.size() - 8) == "\r\n\r\nm 1\n");
}

TEST_CASE("metrics http: a request split into single bytes parses the same", "[metrics_http]") {
  const std::string req = "GET /metrics?x=1 HTTP/1.0\nHost: a\n\n";  // bare LF line ends, a query string
  HttpRequestParser p;
  for (size_t i = 0; i + 1 < req.size(); ++i) REQUIRE(p.feed(req.substr(i, 1)) == State::kNeedMore);
  REQUIRE(p.feed(req.substr(req.size() - 1)) == State::kDone);
  CHECK(p.method() == "GET");
  CHECK(p.path() == "/metrics");
}

TEST_CASE("metrics http: HEAD gets headers only, other paths 404, other methods 405", "[metrics_http]") {
  const std::string head = answer("HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK(status_line(head) == "HTTP/1.1 200 OK");
  CHECK(head.find("Content-Length: 4\r\n") != std::string::npos);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
  CHECK(status_line(answer("GET / HTTP/1.1\r\n\r\n")) == "HTTP/1.1 404 Not Found");
  CHECK(status_line(answer("GET /metricsx HTTP/1.1\r\n\r\n")) == "HTTP/1.1 404 Not Found");
  const std::string post = answer("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(status_line(post) == "HTTP/1.1 405 Method Not Allowed");
  CHECK(post.find("Allow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("metrics http: malformed request lines and headers get 400, other versions 505", "[metrics_http]") {
  for (const char* bad : {"GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
                          "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n",
                          "G(T /metrics HTTP/1.1\r\n\r\n", "GET /metrics FTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nBad Name: v\r\n\r\n", "\r\n\r\n"}) {
    INFO(bad);
    HttpRequestParser p;
    CHECK(p.feed(bad) == State::kError);
    CHECK(p.error_status() == 400);
    CHECK(status_line(respond(p, [] { return std::string("never"); })) == "HTTP/1.1 400 Bad Request");
  }
  CHECK(status_line(answer("GET /metrics HTTP/2.0\r\n\r\n")) == "HTTP/1.1 505 HTTP Version Not Supported");
}

TEST_CASE("metrics http: a head over the cap is refused with 431 and not kept", "[metrics_http]") {
  HttpRequestParser p(100);
  CHECK(p.feed("GET /metrics HTTP/1.1\r\n") == State::kNeedMore);
  CHECK(p.feed("X-Pad: " + std::string(60, 'a') + "\r\n") == State::kNeedMore);
  CHECK(p.feed(std::string(1 << 20, 'b')) == State::kError);  // a megabyte more is cut at the cap
  CHECK(p.error_status() == 431);
  CHECK(p.feed("\r\n\r\n") == State::kError);  // stays refused
  // A head that ends just over the cap in one piece is refused too.
  HttpRequestParser q(30);
  CHECK(q.feed("GET /metrics HTTP/1.1\r\nA: bc\r\n\r\n") == State::kError);
  CHECK(q.error_status() == 431);
}

TEST_CASE("metrics http: an unfinished request is no response yet and renders nothing", "[metrics_http]") {
  HttpRequestParser p;
  CHECK(p.feed("GET /metrics HTTP/1.1\r\nHost: a\r\n") == State::kNeedMore);
  bool rendered = false;
  const std::string r = respond(p, [&] {
    rendered = true;
    return std::string();
  });
  CHECK(status_line(r) == "HTTP/1.1 400 Bad Request");
  CHECK_FALSE(rendered);
}

TEST_CASE("metrics http: listen addresses are HOST:PORT or [IPV6]:PORT", "[metrics_http]") {
  auto a = parse_listen_address("127.0.0.1:9464");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9464);
  auto b = parse_listen_address("[::1]:0");
  REQUIRE(b.ok());
  CHECK(b->host == "::1");
  CHECK(b->port == 0);
  for (const char* bad : {"", "9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:94x", "::1:9464",
                          "[::1]9464", "[::1]:", "127.0.0.1:-1"}) {
    INFO(bad);
    CHECK(parse_listen_address(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("metrics http: with several routes each path gets its own body and type", "[metrics_http]") {
  const std::vector<HttpRoute> routes{{"/metrics", kExpositionContentType, [] { return std::string("m 1\n"); }},
                                      {"/status", "application/json", [] { return std::string("{\"a\":1}\n"); }}};
  auto get = [&](const std::string& req) {
    HttpRequestParser p;
    p.feed(req);
    return respond(p, routes);
  };
  const std::string s = get("GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(s) == "HTTP/1.1 200 OK");
  CHECK(s.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(s.substr(s.size() - 8) == "{\"a\":1}\n");
  CHECK(get("GET /metrics HTTP/1.1\r\n\r\n").find("m 1\n") != std::string::npos);
  const std::string nf = get("GET /other HTTP/1.1\r\n\r\n");
  CHECK(status_line(nf) == "HTTP/1.1 404 Not Found");
  CHECK(nf.find("try /metrics or /status") != std::string::npos);
  CHECK(status_line(get("DELETE /status HTTP/1.1\r\n\r\n")) == "HTTP/1.1 405 Method Not Allowed");
}

TEST_CASE("metrics http: responses parse back, malformed ones are refused", "[metrics_http]") {
  auto r = parse_http_response(http_response(200, "application/json", "{}\n"));
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->content_type == "application/json");
  CHECK(r->body == "{}\n");
  auto nf = parse_http_response("HTTP/1.0 404 Not Found\nContent-Type: text/plain\n\nno\n");
  REQUIRE(nf.ok());
  CHECK(nf->status == 404);
  CHECK(nf->body == "no\n");
  for (const char* bad : {"", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"}) {
    INFO(bad);
    CHECK(parse_http_response(bad).status().code() == StatusCode::kCorrupt);
  }
  CHECK(parse_http_response(std::string(100, 'x'), 99).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("metrics http: loopback hosts are told apart", "[metrics_http]") {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) CHECK(is_loopback_host(h));
  for (const char* h : {"0.0.0.0", "10.0.0.1", "::", "127.0.0.1.example.com", "1270.0.0.1"}) CHECK_FALSE(is_loopback_host(h));
}
