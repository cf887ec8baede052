// One direction of an emulated wide-area link, as a sans-IO model: chunks of bytes go in with
// the (virtual) time they were handed to the link and come out with the time the far end may
// see them. The linkemu proxy (proxy.h) drives it with the clock; tests drive it by hand.
//
// Pipeline of a chunk handed over at t (docs/linkemu.md):
//   propagation  a = t + delay + U[0, jitter], never earlier than the previous chunk's a
//                (a TCP stream is never reordered, and a link is one FIFO)
//   stall        an a inside a stall window [s, s + stall) waits for s + stall
//   bandwidth    a token bucket (rate, burst) shared by every connection of the link; a chunk
//                leaves when the bucket holds its size, so any window [t1, t2] of deliveries
//                carries at most rate * (t2 - t1) + burst bytes
// Jitter, stall and reset times come from the seed alone, never from the traffic, so the same
// seed and the same inputs give the same outputs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "common/status.h"

namespace noloco::linkemu {

using Ns = std::chrono::nanoseconds;

struct LinkParams {
  double delay_ms = 0;             // one-way propagation delay
  double jitter_ms = 0;            // extra delay, uniform in [0, jitter_ms] per chunk
  double rate_mbit = 0;            // bandwidth cap in Mbit/s (10^6 bits); 0: unlimited
  uint32_t burst_kb = 64;          // token bucket depth in KiB; also the largest chunk
  double stall_every_s = 0;        // mean seconds from a random stall's end to the next's start; 0: none
  double stall_ms = 0;             // length of every stall, random or scheduled
  std::vector<double> stall_at_s;  // scheduled stall starts, seconds after the settings took effect
  double reset_every_s = 0;        // mean seconds between random connection resets; 0: none
  std::vector<double> reset_at_s;  // scheduled resets, seconds after the settings took effect
  bool down = false;               // cut: the proxy refuses and resets (not used by the model)

  Status validate() const;
  bool operator==(const LinkParams&) const = default;
};

// Event times from a seed, read in increasing time order: exponential gaps of the given mean,
// each event followed by `spacing` before the next gap starts (a stall's length, so random
// stalls never overlap).
class RandomEvents {
 public:
  RandomEvents() = default;  // no events
  RandomEvents(double mean_s, uint64_t seed, Ns start, Ns spacing = Ns(0));
  // The first event at or after t (t must not decrease between calls); nullopt when none.
  std::optional<Ns> first_at_or_after(Ns t);

 private:
  double mean_s_ = 0;
  Ns spacing_{0};
  std::mt19937_64 rng_;
  Ns next_{0};
};

class LinkModel {
 public:
  LinkModel(const LinkParams& params, uint64_t seed, Ns start);

  // New settings from `now` on; the queue (tokens, last delivery) carries over and the random
  // and scheduled events restart at `now`.
  void reconfigure(const LinkParams& params, Ns now);
  const LinkParams& params() const { return p_; }

  // Largest chunk deliver_at accepts: the bucket depth (a chunk leaves whole).
  size_t max_chunk() const { return burst_bytes_; }
  // Delivery time of n bytes (1 <= n <= max_chunk()) handed over at t. t must not decrease
  // between calls (a later call with an earlier t is treated as arriving at the previous t).
  // Delivery times never decrease and are never earlier than t + delay.
  Ns deliver_at(size_t n, Ns t);

  // The stall window containing a or starting after it, as [start, end); t must not decrease.
  std::optional<std::pair<Ns, Ns>> stall_at_or_after(Ns t);
  // The first reset event strictly after t; t must not decrease between calls.
  std::optional<Ns> next_reset_after(Ns t);

 private:
  Ns after_stalls(Ns a);
  Ns through_bucket(size_t n, Ns a);

  LinkParams p_;
  uint64_t seed_;
  uint64_t generation_ = 0;
  size_t burst_bytes_;
  Ns epoch_{0};  // when the current settings took effect
  std::mt19937_64 jitter_rng_;
  RandomEvents random_stalls_, random_resets_;
  size_t stall_idx_ = 0, reset_idx_ = 0;  // next scheduled entries not yet passed
  Ns last_t_{0}, last_a_{0}, last_delivery_{0};
  double tokens_;
};

// Uniform in [0, 1) from 53 random bits (the same on every standard library, unlike
// std::uniform_real_distribution).
double unit_interval(std::mt19937_64& rng);

}  // namespace noloco::linkemu
