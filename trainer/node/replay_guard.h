// Replayed payloads (docs/protocols/exchange.md, "Replays"): per peer, the newest outer step we
// accepted from it and the content of that payload (the SHA-256s its header lists). An honest
// node builds one payload per outer step and its steps only grow (until it restarts from a
// checkpoint), so a payload we already mixed, or one older than the last we mixed, brings nothing
// new: mixing it again would count the same pseudo-gradient twice.
//
// Torch-free and IO-free.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "trainer/node/exchange_wire.h"

namespace noloco::node {

class ReplayGuard {
 public:
  // kRepeatOfAnswer: the same payload as the last one mixed, which came as the peer's answer to our
  // call (an honest caller can push it to us afterwards: we called it between its publish and its
  // own call); kRepeat: the same, which it had pushed to us as a caller before.
  enum class Verdict { kNew, kRepeat, kRepeatOfAnswer, kOlder };

  // The content key of a payload: its tensors' SHA-256s in stream order.
  static std::string content_of(const PayloadHeader& h) {
    std::string key;
    for (const auto& t : h.tensors) key.append(t.sha256.begin(), t.sha256.end());
    return key;
  }

  Verdict check(const std::string& peer, uint64_t outer_step, const std::string& content) const {
    auto it = last_.find(peer);
    if (it == last_.end()) return Verdict::kNew;
    if (outer_step < it->second.outer_step) return Verdict::kOlder;
    if (outer_step == it->second.outer_step && content == it->second.content)
      return it->second.as_answer ? Verdict::kRepeatOfAnswer : Verdict::kRepeat;
    return Verdict::kNew;
  }

  // After the payload passed every check (it will be mixed); as_answer: it was the peer's answer
  // to our call, not pushed by it as a caller.
  void accepted(const std::string& peer, uint64_t outer_step, std::string content, bool as_answer) {
    last_[peer] = Last{outer_step, std::move(content), as_answer};
  }

 private:
  struct Last {
    uint64_t outer_step = 0;
    std::string content;
    bool as_answer = false;
  };
  std::map<std::string, Last> last_;
};

}  // namespace noloco::node
