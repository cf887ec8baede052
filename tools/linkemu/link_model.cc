#include "tools/linkemu/link_model.h"

#include <algorithm>
#include <cmath>

namespace noloco::linkemu {
namespace {

Ns from_seconds(double s) { return Ns(static_cast<int64_t>(std::ceil(s * 1e9))); }

// splitmix64: turns (seed, stream) into independent generator seeds.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A gap of a Poisson process with the given mean (inverse transform of the exponential).
Ns exponential_gap(std::mt19937_64& rng, double mean_s) {
  return from_seconds(-mean_s * std::log1p(-unit_interval(rng)));
}

// Sorted copy: scheduled times may be written in any order.
std::vector<double> sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool finite_non_negative(double x) { return std::isfinite(x) && x >= 0; }

}  // namespace

double unit_interval(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

Status LinkParams::validate() const {
  // Caps keep every derived nanosecond count far from int64 overflow.
  constexpr double kMaxSeconds = 1e6;
  auto bad = [](const char* what) { return invalid_argument(std::string("link: ") + what); };
  if (!finite_non_negative(delay_ms) || delay_ms > kMaxSeconds) return bad("delay_ms must be in [0, 1e9]");
  if (!finite_non_negative(jitter_ms) || jitter_ms > kMaxSeconds) return bad("jitter_ms must be in [0, 1e9]");
  if (!finite_non_negative(rate_mbit) || rate_mbit > 1e6) return bad("rate_mbit must be in [0, 1e6]");
  if (burst_kb < 1 || burst_kb > 65536) return bad("burst_kb must be in [1, 65536]");
  if (!finite_non_negative(stall_ms) || stall_ms > kMaxSeconds) return bad("stall_ms must be in [0, 1e9]");
  if (!finite_non_negative(stall_every_s) || stall_every_s > kMaxSeconds) return bad("stall_every_s must be in [0, 1e6]");
  if (stall_every_s > 0 && stall_every_s < 1e-3) return bad("stall_every_s must be at least 0.001");
  if ((stall_every_s > 0 || !stall_at_s.empty()) && stall_ms <= 0) return bad("stalls need a positive stall_ms");
  if (!finite_non_negative(reset_every_s) || reset_every_s > kMaxSeconds) return bad("reset_every_s must be in [0, 1e6]");
  if (reset_every_s > 0 && reset_every_s < 1e-3) return bad("reset_every_s must be at least 0.001");
  for (double s : stall_at_s) {
    if (!finite_non_negative(s) || s > kMaxSeconds) return bad("stall_at_s entries must be in [0, 1e6]");
  }
  for (double s : reset_at_s) {
    if (!finite_non_negative(s) || s > kMaxSeconds) return bad("reset_at_s entries must be in [0, 1e6]");
  }
  if (stall_at_s.size() > 100000 || reset_at_s.size() > 100000) return bad("at most 100000 scheduled events");
  return Status::Ok();
}

RandomEvents::RandomEvents(double mean_s, uint64_t seed, Ns start, Ns spacing)
    : mean_s_(mean_s), spacing_(spacing), rng_(seed) {
  if (mean_s_ > 0) next_ = start + exponential_gap(rng_, mean_s_);
}

std::optional<Ns> RandomEvents::first_at_or_after(Ns t) {
  if (mean_s_ <= 0) return std::nullopt;
  while (next_ < t) next_ += spacing_ + std::max(Ns(1), exponential_gap(rng_, mean_s_));
  return next_;
}

LinkModel::LinkModel(const LinkParams& params, uint64_t seed, Ns start) : seed_(seed) {
  tokens_ = static_cast<double>(params.burst_kb) * 1024;
  last_t_ = last_a_ = last_delivery_ = start;
  reconfigure(params, start);
}

void LinkModel::reconfigure(const LinkParams& params, Ns now) {
  p_ = params;
  p_.stall_at_s = sorted(p_.stall_at_s);
  p_.reset_at_s = sorted(p_.reset_at_s);
  burst_bytes_ = static_cast<size_t>(p_.burst_kb) * 1024;
  tokens_ = std::min(tokens_, static_cast<double>(burst_bytes_));
  epoch_ = now;
  ++generation_;
  const uint64_t base = mix(seed_ ^ mix(generation_));
  jitter_rng_.seed(mix(base ^ 1));
  random_stalls_ = RandomEvents(p_.stall_every_s, mix(base ^ 2), now, from_seconds(p_.stall_ms / 1e3));
  random_resets_ = RandomEvents(p_.reset_every_s, mix(base ^ 3), now);
  stall_idx_ = reset_idx_ = 0;
}

std::optional<std::pair<Ns, Ns>> LinkModel::stall_at_or_after(Ns t) {
  const Ns len = from_seconds(p_.stall_ms / 1e3);
  std::optional<std::pair<Ns, Ns>> best;
  // Scheduled: skip windows that ended at or before t.
  while (stall_idx_ < p_.stall_at_s.size() && epoch_ + from_seconds(p_.stall_at_s[stall_idx_]) + len <= t) ++stall_idx_;
  if (stall_idx_ < p_.stall_at_s.size()) {
    Ns s = epoch_ + from_seconds(p_.stall_at_s[stall_idx_]);
    best = std::make_pair(s, s + len);
  }
  // Random: a window containing t starts at most len before it.
  if (auto s = random_stalls_.first_at_or_after(t - len + Ns(1))) {
    if (!best || *s < best->first) best = std::make_pair(*s, *s + len);
  }
  return best;
}

Ns LinkModel::after_stalls(Ns a) {
  // Windows may overlap or follow each other: keep pushing until a is in none.
  for (;;) {
    auto w = stall_at_or_after(a);
    if (!w || w->first > a) return a;
    a = w->second;
  }
}

Ns LinkModel::through_bucket(size_t n, Ns a) {
  if (p_.rate_mbit <= 0) return a;
  const double rate = p_.rate_mbit * 1e6 / 8;  // bytes per second
  const double cap = static_cast<double>(burst_bytes_);
  double tokens = std::min(cap, tokens_ + rate * std::chrono::duration<double>(a - last_delivery_).count());
  Ns leave = a;
  if (tokens < static_cast<double>(n)) {
    leave = a + from_seconds((static_cast<double>(n) - tokens) / rate);
    tokens = std::min(cap, tokens + rate * std::chrono::duration<double>(leave - a).count());
  }
  tokens_ = std::max(0.0, tokens - static_cast<double>(n));
  return leave;
}

Ns LinkModel::deliver_at(size_t n, Ns t) {
  n = std::clamp<size_t>(n, 1, burst_bytes_);
  t = std::max(t, last_t_);
  last_t_ = t;
  const double jitter = p_.jitter_ms > 0 ? unit_interval(jitter_rng_) * p_.jitter_ms : 0.0;
  Ns a = std::max(last_a_, t + from_seconds((p_.delay_ms + jitter) / 1e3));
  a = after_stalls(a);
  last_a_ = a;
  // The bucket sees chunks in FIFO order: none leaves before the one ahead of it.
  const Ns leave = through_bucket(n, std::max(a, last_delivery_));
  last_delivery_ = leave;
  return leave;
}

std::optional<Ns> LinkModel::next_reset_after(Ns t) {
  std::optional<Ns> best;
  while (reset_idx_ < p_.reset_at_s.size() && epoch_ + from_seconds(p_.reset_at_s[reset_idx_]) <= t) ++reset_idx_;
  if (reset_idx_ < p_.reset_at_s.size()) best = epoch_ + from_seconds(p_.reset_at_s[reset_idx_]);
  if (auto r = random_resets_.first_at_or_after(t + Ns(1))) {
    if (!best || *r < *best) best = r;
  }
  return best;
}

}  // namespace noloco::linkemu
