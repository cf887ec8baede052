#include "trainer/node/trickle_detector.h"

#include <vector>

namespace noloco::node {

bool TrickleDetector::on_bytes(TimePoint now, size_t bytes) {
  if (trickling_) return true;
  arrivals_.emplace_back(now, bytes);
  while (!arrivals_.empty() && arrivals_.front().first <= now - limits_.window) arrivals_.pop_front();
  trickling_ = judge(now);
  return trickling_;
}

size_t TrickleDetector::window_bytes() const {
  size_t total = 0;
  for (const auto& a : arrivals_) total += a.second;
  return total;
}

bool TrickleDetector::judge(TimePoint now) const {
  if (limits_.slots == 0 || limits_.window <= Duration::zero()) return false;
  const double seconds = std::chrono::duration<double>(limits_.window).count();
  if (static_cast<double>(window_bytes()) >= limits_.floor_bytes_per_s * seconds) return false;
  // Every slot of (now - window, now] has seen an arrival: the sender kept sending throughout.
  const TimePoint start = now - limits_.window;
  const Duration slot = limits_.window / static_cast<Duration::rep>(limits_.slots);
  std::vector<bool> seen(limits_.slots, false);
  for (const auto& a : arrivals_) {
    auto i = static_cast<size_t>((a.first - start) / slot);
    if (a.first > start && i < limits_.slots) seen[i] = true;
    else if (a.first > start) seen[limits_.slots - 1] = true;  // exactly now
  }
  for (bool s : seen)
    if (!s) return false;
  return true;
}

}  // namespace noloco::node
