#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace noloco {

void configure_logging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("noloco");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%H:%M:%S.%e %^%L%$ %v");
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
  spdlog::set_level(lvl);
}

}  // namespace noloco
