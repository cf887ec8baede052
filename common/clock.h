// A clock that protocol code asks for time, so timeout logic can be tested with a manual clock
// instead of sleeps.
#pragma once

#include <chrono>
#include <cstdint>

namespace noloco {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// Tests move time by hand.
class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{};
};

// Wall-clock seconds since the Unix epoch, for records that outlive a process.
int64_t unix_time_seconds();

}  // namespace noloco
