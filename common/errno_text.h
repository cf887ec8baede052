// One way to turn an errno value into text, for every module's error messages.
#pragma once

#include <string>

namespace noloco {

// "No such file or directory" for ENOENT. Thread-safe (std::strerror is not): the text comes
// from std::system_category. Pass errno right after the failing call, before anything else can
// change it.
std::string errno_text(int error_number);

}  // namespace noloco
