#include "trainer/node/dial_order.h"

#include <algorithm>

namespace noloco::node {

std::vector<p2p::Multiaddr> dial_order(const p2p::PeerRecord& record, const std::optional<std::string>& last_good) {
  std::vector<std::string> texts;
  // The remembered address only while the peer still lists it (a relay it left is gone).
  if (last_good && std::find(record.addrs.begin(), record.addrs.end(), *last_good) != record.addrs.end())
    texts.push_back(*last_good);
  for (const auto& t : record.addrs)
    if (std::find(texts.begin(), texts.end(), t) == texts.end()) texts.push_back(t);
  std::vector<p2p::Multiaddr> out;
  for (const auto& t : texts) {
    auto a = p2p::Multiaddr::parse(t);
    if (a.ok()) out.push_back(a->with_peer_id(record.peer));
  }
  return out;
}

}  // namespace noloco::node
