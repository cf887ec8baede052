// A small metrics registry rendered in Prometheus' text exposition format 0.0.4 (docs/metrics.md).
//
// Families (a name, a help line, a type and label names) hold series (one value per set of label
// values). Values are atomics, so the training thread, the network thread and the checkpoint
// writer update them without locks; a family's mutex only guards creating a series and rendering.
// Torch-free and Asio-free: the HTTP side is common/metrics_http.h and p2p/metrics_server.h.
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace noloco::metrics {

enum class Type { kCounter, kGauge };

// One time series. Counters only grow (add() ignores negative or non-finite amounts; set() is for
// mirroring a monotone total kept elsewhere); gauges go anywhere.
class Series {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  friend class Family;
  explicit Series(Type type) : type_(type) {}
  Type type_;
  std::atomic<double> value_{0.0};
};

class Family {
 public:
  static constexpr size_t kMaxSeries = 64;  // label cardinality cap: callers' label values are bounded sets

  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}

  // The series with these label values (one per label name, in order), created at 0 on first use.
  // nullptr when the count of values is wrong or the family already holds kMaxSeries series.
  Series* with(const std::vector<std::string>& label_values);
  // The family's only series (no labels).
  Series& only() { return *with({}); }

  const std::string& name() const { return name_; }
  // Appends the HELP and TYPE lines and one sample line per series (sorted by label values).
  void render(std::string& out) const;

 private:
  const std::string name_, help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;
};

class Registry {
 public:
  // Registers a family. Names follow Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*, label names
  // [a-zA-Z_][a-zA-Z0-9_]* not starting with "__"); counters must end in "_total"; a name may be
  // registered once. The family lives as long as the registry.
  Result<Family*> add(Type type, std::string name, std::string help, std::vector<std::string> label_names = {});
  // The whole exposition, families in registration order.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// Exposition text pieces, exposed for tests.
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
std::string escape_help(std::string_view text);         // \ and newline
std::string escape_label_value(std::string_view text);  // \, " and newline
std::string format_value(double v);                     // integers exactly, NaN, +Inf, -Inf

}  // namespace noloco::metrics
