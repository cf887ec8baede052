// Logging goes through spdlog; modules include this header rather than spdlog directly so the
// logger setup (level, format, stderr sink) lives in one place.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace noloco {

// Sets the global level from a name ("trace", "debug", "info", "warn", "error", "off") and
// sends log lines to stderr, leaving stdout for program output. Unknown names keep "info".
void configure_logging(std::string_view level);

}  // namespace noloco

#define NLOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define NLOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define NLOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define NLOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define NLOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
