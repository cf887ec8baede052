// Replayed payloads (docs/protocols/exchange.md, "Replays"): per peer, the newest outer step we
// accepted from it and the content of that payload (the SHA-256s its header lists). An honest
// node builds one payload per outer step and its steps only grow (until it restarts from a
// checkpoint), so a payload we already mixed, or one older than the last we mixed, brings nothing
// new: mixing it again would count the same pseudo-gradient twice. And since every outer step
// changes an honest node's update, content we mixed under one step number that comes back under
// another is a replay no honest node sends.
//
// Torch-free and IO-free.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "trainer/node/exchange_wire.h"
#include "trainer/node/strike_book.h"

namespace noloco::node {

class ReplayGuard {
 public:
  // kRepeatOfAnswer: the same payload as the last one mixed, which came as the peer's answer to our
  // call (an honest caller can push it to us afterwards: we called it between its publish and its
  // own call); kRepeat: the same, which it had pushed to us as a caller before; kOlder: a step
  // before the last one mixed; kReused: content mixed before under another step number.
  enum class Verdict { kNew, kRepeat, kRepeatOfAnswer, kOlder, kReused };

  // Contents remembered per peer for kReused: a replayer that cycles through more old payloads
  // than this is still refused by the numeric checks as its slow weights age.
  static constexpr size_t kHistory = 16;

  // The content key of a payload: its tensors' SHA-256s in stream order.
  static std::string content_of(const PayloadHeader& h) {
    std::string key;
    for (const auto& t : h.tensors) key.append(t.sha256.begin(), t.sha256.end());
    return key;
  }

  Verdict check(const std::string& peer, uint64_t outer_step, const std::string& content) const {
    auto it = last_.find(peer);
    if (it == last_.end()) return Verdict::kNew;
    const Seen& seen = it->second;
    for (const auto& [step, key] : seen.history)
      if (key == content && step != outer_step) return Verdict::kReused;
    if (outer_step < seen.outer_step) return Verdict::kOlder;
    if (outer_step == seen.outer_step && content == seen.content)
      return seen.as_answer ? Verdict::kRepeatOfAnswer : Verdict::kRepeat;
    return Verdict::kNew;
  }

  // After the payload passed every check (it will be mixed); as_answer: it was the peer's answer
  // to our call, not pushed by it as a caller.
  void accepted(const std::string& peer, uint64_t outer_step, std::string content, bool as_answer) {
    Seen& s = last_[peer];
    s.history.emplace_back(outer_step, content);
    if (s.history.size() > kHistory) s.history.pop_front();
    s.outer_step = outer_step;
    s.content = std::move(content);
    s.as_answer = as_answer;
  }

 private:
  struct Seen {
    uint64_t outer_step = 0;
    std::string content;
    bool as_answer = false;
    std::deque<std::pair<uint64_t, std::string>> history;  // (step, content) of the last kHistory mixed
  };
  std::map<std::string, Seen> last_;
};

// What a replay verdict costs the sender (docs/protocols/exchange.md, "Replays"). Only what no
// honest peer sends is struck: a payload reused under a new step number (proof), and a caller
// pushing again what it had already pushed (suspect). An honest lagging partner answers every
// call with its latest payload, an honest caller may push what we took as its answer, an honest
// restarted peer sends older steps: those bring nothing new (weight 0: not mixed, not a refusal).
struct ReplayRuling {
  double weight = 0;
  std::string why;
};

inline ReplayRuling rule_on_replay(ReplayGuard::Verdict v, bool as_answer, uint64_t outer_step) {
  using V = ReplayGuard::Verdict;
  const std::string step = std::to_string(outer_step);
  const std::string via = as_answer ? " (its answer to our call)" : " (pushed by it as a caller)";
  switch (v) {
    case V::kNew:
      return {};
    case V::kReused:
      return {kProofStrike, "replayed payload: content mixed under another outer step comes back as step " + step + via};
    case V::kOlder:
      return {0, "unchanged payload: outer step " + step + " is older than the last one mixed from this peer" + via};
    case V::kRepeat:
    case V::kRepeatOfAnswer:
      break;
  }
  const bool struck = v == V::kRepeat && !as_answer;
  return {struck ? kSuspectStrike : 0,
          std::string(struck ? "replayed payload" : "unchanged payload") + ": outer step " + step +
              " with the same content was mixed already" +
              (v == V::kRepeatOfAnswer ? " as its answer to an earlier call" : "") + via};
}

// A payload `lag` outer steps behind ours, past `max_staleness`, is not mixed and not verified
// (an honest lagger sends such, weight 0); but content we mixed under another outer step is a
// replay at any age: the replay attacker that fell behind the swarm sent its first payload again
// and again as stale ones, never judged (attack matrix, replay x2, 2026-12-04). The ruling when
// that is what `content` is; nothing otherwise.
inline std::optional<ReplayRuling> rule_on_stale(const ReplayGuard& guard, const std::string& peer, uint64_t outer_step,
                                                 const std::string& content, int64_t lag, int64_t max_staleness,
                                                 bool as_answer) {
  if (lag <= max_staleness) return std::nullopt;  // the usual checks rule on it
  const auto v = guard.check(peer, outer_step, content);
  if (v != ReplayGuard::Verdict::kReused) return std::nullopt;
  return rule_on_replay(v, as_answer, outer_step);
}

}  // namespace noloco::node
