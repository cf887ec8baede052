// Prometheus text exposition format 0.0.4. Facts used here (line syntax, HELP/TYPE lines, the
// escapes of HELP text and label values, NaN/+Inf/-Inf, metric and label name character sets)
// are from https://prometheus.io/docs/instrumenting/exposition_formats/ ("Text-based format")
// and https://prometheus.io/docs/concepts/data_model/ ("Metric names and labels").
#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace noloco::metrics {
namespace {

bool name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool colon_ok) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, colon_ok)) return false;
  return true;
}

const char* type_name(Type t) { return t == Type::kCounter ? "counter" : "gauge"; }

}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }

bool valid_label_name(std::string_view name) { return valid_name(name, false) && name.substr(0, 2) != "__"; }

std::string escape_help(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  // Integral values below 2^53 print as integers (counters, steps); others as the shortest text
  // that reads back as the same double.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void Series::add(double v) {
  if (type_ == Type::kCounter && !(v >= 0 && std::isfinite(v))) return;
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

Series* Family::with(const std::vector<std::string>& label_values) {
  if (label_values.size() != label_names_.size()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = series_.find(label_values);
  if (it != series_.end()) return it->second.get();
  if (series_.size() >= kMaxSeries) return nullptr;
  auto* s = new Series(type_);
  series_.emplace(label_values, std::unique_ptr<Series>(s));
  return s;
}

void Family::render(std::string& out) const {
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + type_name(type_) + "\n";
  std::lock_guard lock(mu_);
  for (const auto& [values, series] : series_) {
    out += name_;
    if (!values.empty()) {
      out += '{';
      for (size_t i = 0; i < values.size(); ++i) {
        if (i) out += ',';
        out += label_names_[i] + "=\"" + escape_label_value(values[i]) + "\"";
      }
      out += '}';
    }
    out += ' ' + format_value(series->value()) + '\n';
  }
}

Result<Family*> Registry::add(Type type, std::string name, std::string help, std::vector<std::string> label_names) {
  if (!valid_metric_name(name)) return invalid_argument("metric name '" + name + "' is not a valid Prometheus name");
  if (type == Type::kCounter && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
    return invalid_argument("counter '" + name + "' must end in _total");
  for (const auto& l : label_names)
    if (!valid_label_name(l)) return invalid_argument("label name '" + l + "' of " + name + " is not valid");
  std::lock_guard lock(mu_);
  for (const auto& f : families_)
    if (f->name() == name) return Status(StatusCode::kAlreadyExists, "metric " + name + " registered twice");
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), type, std::move(label_names)));
  return families_.back().get();
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace noloco::metrics
