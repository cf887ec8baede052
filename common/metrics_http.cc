// HTTP/1.x request-line and header syntax: RFC 9112 sections 2-5 (a request line "method SP
// request-target SP HTTP-version", header fields "name: value", the head ending at an empty line;
// a bare LF line ending is accepted, section 2.2). Status codes: RFC 9110 section 15; 431: RFC 6585.
#include "common/metrics_http.h"

#include <charconv>
#include <vector>

namespace noloco::metrics {
namespace {

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < head.size()) {
    size_t nl = head.find('\n', start);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = nl + 1;
  }
  return lines;
}

}  // namespace

HttpRequestParser::State HttpRequestParser::fail(int status) {
  error_status_ = status;
  return state_ = State::kError;
}

HttpRequestParser::State HttpRequestParser::feed(std::string_view bytes) {
  if (state_ != State::kNeedMore) return state_;
  // Keep at most one byte over the cap: enough to know the cap was passed, never more.
  const size_t before = buf_.size();
  buf_.append(bytes.substr(0, max_bytes_ + 1 - before));
  // The head ends at the first empty line ("\n\n" or "\n\r\n"); only new bytes need a look.
  for (size_t i = before > 2 ? before - 2 : 0; i < buf_.size(); ++i) {
    if (buf_[i] != '\n') continue;
    size_t end = 0;
    if (i + 1 < buf_.size() && buf_[i + 1] == '\n') end = i + 2;
    else if (i + 2 < buf_.size() && buf_[i + 1] == '\r' && buf_[i + 2] == '\n') end = i + 3;
    if (end == 0) continue;
    if (end > max_bytes_) return fail(431);
    return parse_head(std::string_view(buf_).substr(0, i));
  }
  if (buf_.size() > max_bytes_) return fail(431);
  return state_;
}

HttpRequestParser::State HttpRequestParser::parse_head(std::string_view head) {
  const auto lines = split_lines(head);
  if (lines.empty()) return fail(400);
  const std::string_view line = lines[0];
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return fail(400);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target[0] != '/') return fail(400);
  if (version.substr(0, 5) != "HTTP/") return fail(400);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(505);
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    // No obsolete line folding, no space before the colon (RFC 9112 section 5.1).
    if (colon == std::string_view::npos || !is_token(lines[i].substr(0, colon))) return fail(400);
  }
  method_ = std::string(method);
  path_ = std::string(target.substr(0, target.find('?')));
  buf_.clear();
  buf_.shrink_to_fit();
  return state_ = State::kDone;
}

std::string http_response(int status, std::string_view content_type, std::string_view body, bool head,
                          std::string_view extra_headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += "Connection: close\r\n\r\n";
  if (!head) out += body;
  return out;
}

std::string respond(const HttpRequestParser& request, const std::vector<HttpRoute>& routes) {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  if (request.state() == HttpRequestParser::State::kError) {
    const int st = request.error_status();
    return http_response(st, kText, std::string(reason(st)) + "\n");
  }
  if (request.state() != HttpRequestParser::State::kDone) return http_response(400, kText, "Bad Request\n");
  const HttpRoute* route = nullptr;
  std::string paths;
  for (const auto& r : routes) {
    if (r.path == request.path()) route = &r;
    paths += (paths.empty() ? "" : " or ") + r.path;
  }
  if (route == nullptr) return http_response(404, kText, "Not Found: try " + paths + "\n");
  const bool head = request.method() == "HEAD";
  if (request.method() != "GET" && !head)
    return http_response(405, kText, "Method Not Allowed\n", false, "Allow: GET, HEAD\r\n");
  return http_response(200, route->content_type, route->render(), head);
}

std::string respond(const HttpRequestParser& request, const std::function<std::string()>& render) {
  return respond(request, std::vector<HttpRoute>{{"/metrics", kExpositionContentType, render}});
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 written as a dotted quad: "127." and then digits and dots only.
  if (host.substr(0, 4) != "127.") return false;
  for (char c : host.substr(4))
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  return true;
}

Result<HttpResponse> parse_http_response(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes)
    return too_large("HTTP response over " + std::to_string(max_bytes) + " bytes");
  size_t head_end = bytes.find("\r\n\r\n");
  size_t body_start = head_end + 4;
  if (head_end == std::string_view::npos) {
    head_end = bytes.find("\n\n");
    body_start = head_end + 2;
  }
  if (head_end == std::string_view::npos) return corrupt("HTTP response: no end of headers");
  const auto lines = split_lines(bytes.substr(0, head_end));
  const std::string_view line = lines.empty() ? std::string_view() : lines[0];
  // "HTTP/1.x SP 3DIGIT SP reason" (RFC 9112 section 4).
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return corrupt("HTTP response: bad status line");
  int code = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, code);
  if (ec != std::errc() || end != line.data() + 12 || code < 100) return corrupt("HTTP response: bad status code");
  HttpResponse out;
  out.status = code;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string_view::npos) return corrupt("HTTP response: bad header line");
    std::string name(lines[i].substr(0, colon));
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    std::string_view value = lines[i].substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "content-type") out.content_type = std::string(value);
  }
  out.body = std::string(bytes.substr(body_start));
  return out;
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return invalid_argument("metrics address '" + std::string(text) + "': expected [IPV6]:PORT");
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return invalid_argument("metrics address '" + std::string(text) + "': expected HOST:PORT");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (out.host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return invalid_argument("metrics address '" + std::string(text) + "': bad host or port");
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace noloco::metrics
