// Local addresses (local_addrs.h).
#include "p2p/local_addrs.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/errno_text.h"

namespace noloco::p2p {

std::vector<std::string> local_ipv4_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char buf[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) out.emplace_back(buf);
  }
  freeifaddrs(list);
  return out;
}

Result<std::string> local_ipv4_towards(const std::string& ipv4) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);  // any port: connect() on UDP sends nothing
  if (inet_pton(AF_INET, ipv4.c_str(), &to.sin_addr) != 1) return invalid_argument("'" + ipv4 + "' is not an IPv4 address");
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error("socket: " + errno_text(errno));
  sockaddr_in self{};
  socklen_t len = sizeof self;
  Status st = Status::Ok();
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0)
    st = io_error("no route to " + ipv4 + ": " + errno_text(errno));
  else if (getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) != 0)
    st = io_error("getsockname: " + errno_text(errno));
  close(fd);
  if (!st.ok()) return st;
  char buf[INET_ADDRSTRLEN];
  if (inet_ntop(AF_INET, &self.sin_addr, buf, sizeof buf) == nullptr) return io_error("inet_ntop failed");
  return std::string(buf);
}

}  // namespace noloco::p2p
