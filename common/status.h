// Status and Result<T>: how every module reports failure across its boundary.
// Exceptions stay inside a module (libtorch throws c10::Error); the edge turns
// them into a Status so callers never need to know which library failed.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace noloco {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // caller passed something malformed (flags, config)
  kCorrupt,           // bytes failed a check: bad checksum, bad framing, bad hash
  kTooLarge,          // a length or count over its cap
  kTruncated,         // input ended before the message did (may be retried with more bytes)
  kNotFound,
  kAlreadyExists,
  kIoError,
  kPermissionDenied,
  kTimeout,
  kUnavailable,       // peer unreachable, connection closed
  kProtocolError,     // the other side broke a protocol rule
  kUnsupported,       // version or feature we do not speak
  kInternal,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corrupt: checksum mismatch in block 3"
  std::string to_string() const;

  // Prefix the message with where it happened, keeping the code.
  Status context(const std::string& where) const {
    if (ok()) return *this;
    return Status(code_, where + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Helpers so call sites read as sentences: return corrupt("bad magic");
inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status too_large(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
inline Status truncated(std::string m) { return {StatusCode::kTruncated, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status protocol_error(std::string m) { return {StatusCode::kProtocolError, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace noloco

// Early-return helpers. Kept as macros because a function cannot return from its caller.
#define NOLOCO_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::noloco::Status _st = (expr);              \
    if (!_st.ok()) return _st;                  \
  } while (0)

#define NOLOCO_CONCAT_INNER(a, b) a##b
#define NOLOCO_CONCAT(a, b) NOLOCO_CONCAT_INNER(a, b)
#define NOLOCO_ASSIGN_OR_RETURN(lhs, expr) \
  NOLOCO_ASSIGN_OR_RETURN_IMPL(NOLOCO_CONCAT(_res_, __LINE__), lhs, expr)
#define NOLOCO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
